package pipeline

import (
	"errors"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// nextBatch waits for one message, then takes more until size messages are
// in hand or wait has passed since the first arrived. It returns
// jetstream.ErrMsgIteratorClosed once the iterator is closed and empty.
func nextBatch(it jetstream.MessagesContext, size int, wait time.Duration) ([]jetstream.Msg, error) {
	first, err := nextMsg(it)
	if err != nil {
		return nil, err
	}
	batch := []jetstream.Msg{first}
	deadline := time.Now().Add(wait)
	for len(batch) < size {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			break
		}
		msg, err := it.Next(jetstream.NextMaxWait(remaining))
		if err != nil {
			break // a timeout or a closed iterator: hand over what we have
		}
		batch = append(batch, msg)
	}
	return batch, nil
}

// nextMsg blocks for the next message. A missed heartbeat is not the end:
// the iterator re-issues its pull requests by itself, which is what brings a
// consumer back after the server restarts.
func nextMsg(it jetstream.MessagesContext) (jetstream.Msg, error) {
	for {
		msg, err := it.Next()
		if err == nil {
			return msg, nil
		}
		if errors.Is(err, jetstream.ErrMsgIteratorClosed) {
			return nil, err
		}
		if errors.Is(err, jetstream.ErrNoHeartbeat) || errors.Is(err, nats.ErrTimeout) {
			continue
		}
		return nil, err
	}
}
