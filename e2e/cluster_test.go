package e2e

import (
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/natstest"
)

// TestClusterNodeLossesLoseNothing runs a consumer against a three-node
// JetStream cluster with streams replicated three times, kills one node
// mid-run, brings it back, then kills another: every event is delivered,
// and the consumer follows the leader changes without a restart.
func TestClusterNodeLossesLoseNothing(t *testing.T) {
	t.Parallel()
	cluster := natstest.StartCluster(t, 3)
	e := newEnv(t, cluster.URLs())
	settings := e.with("HOOKRELAY_REPLICAS=3", "HOOKRELAY_REQUEST_TIMEOUT=2s")
	c := startConsumer(t, "consumer", settings...)
	recv := newReceiver(t, 3*time.Millisecond)
	recv.endpoint(t, c, "/all", map[string]any{"event_types": []string{"*"}})

	publish(t, fixtureFile, settings...)
	eventually(t, 60*time.Second, "deliveries under way", func() bool {
		return recv.unique("/all") >= 1000
	})
	cluster.Nodes[0].Shutdown()
	at := recv.unique("/all")
	eventually(t, 60*time.Second, "progress with a node down", func() bool {
		return recv.unique("/all") >= at+1000
	})
	cluster.Nodes[0].Restart()
	cluster.Nodes[1].Shutdown()

	eventually(t, 120*time.Second, "every event delivered", func() bool {
		return recv.unique("/all") == 5000
	})
	eventually(t, 30*time.Second, "the history to agree", func() bool {
		return countDeliveries(t, c, "status=succeeded") == 5000
	})
	t.Logf("duplicates: %d", duplicates(recv.ids("/all")))
}
