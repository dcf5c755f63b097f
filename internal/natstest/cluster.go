package natstest

import (
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a JetStream cluster of embedded servers on loopback, private
// to one test.
type Cluster struct {
	Nodes []*Node
}

// Node is one server of a Cluster.
type Node struct {
	t    testing.TB
	opts *server.Options
	srv  *server.Server
	URL  string
}

// StartCluster starts n clustered JetStream servers and waits until the
// cluster has elected a meta leader.
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	clientPorts, routePorts := freePorts(t, n), freePorts(t, n)
	var routes []*url.URL
	for _, p := range routePorts {
		routes = append(routes, &url.URL{Scheme: "nats", Host: "127.0.0.1:" + strconv.Itoa(p)})
	}
	c := &Cluster{}
	for i := range n {
		c.Nodes = append(c.Nodes, &Node{t: t, opts: nodeOptions(t, i, clientPorts[i],
			routePorts[i], routes), URL: "nats://127.0.0.1:" + strconv.Itoa(clientPorts[i])})
	}
	for _, node := range c.Nodes {
		node.start()
		t.Cleanup(node.Shutdown)
	}
	c.waitLeader()
	return c
}

func nodeOptions(t testing.TB, i, port, routePort int, routes []*url.URL) *server.Options {
	return &server.Options{
		ServerName: fmt.Sprintf("node-%d", i), Host: "127.0.0.1", Port: port,
		JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
		Cluster: server.ClusterOpts{Name: "natstest", Host: "127.0.0.1", Port: routePort},
		Routes:  routes,
	}
}

// URLs is the client URLs of every node, comma-separated, as NATS_URL
// takes them.
func (c *Cluster) URLs() string {
	urls := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		urls[i] = n.URL
	}
	return strings.Join(urls, ",")
}

func (n *Node) start() {
	n.t.Helper()
	opts := *n.opts
	srv, err := server.NewServer(&opts)
	if err != nil {
		n.t.Fatalf("cluster node %s: %v", opts.ServerName, err)
	}
	srv.Start()
	if !srv.ReadyForConnections(20 * time.Second) {
		n.t.Fatalf("cluster node %s not ready", opts.ServerName)
	}
	n.srv = srv
}

// Shutdown stops the node; it is safe to call twice.
func (n *Node) Shutdown() {
	if n.srv != nil {
		n.srv.Shutdown()
		n.srv.WaitForShutdown()
		n.srv = nil
	}
}

// Restart starts a stopped node again with its ports and store.
func (n *Node) Restart() {
	n.t.Helper()
	n.Shutdown()
	n.start()
}

// waitLeader polls until some node reports a JetStream meta leader.
func (c *Cluster) waitLeader() {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, n := range c.Nodes {
			if n.srv != nil && n.srv.JetStreamIsLeader() {
				return
			}
		}
		time.Sleep(50 * time.Millisecond) // the poll interval of this helper
	}
	c.Nodes[0].t.Fatalf("cluster elected no JetStream leader in 30s")
}

func freePorts(t testing.TB, n int) []int {
	ports := make([]int, n)
	for i := range ports {
		ports[i] = freePort(t)
	}
	return ports
}
