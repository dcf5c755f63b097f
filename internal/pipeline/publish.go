package pipeline

import (
	"context"
	"fmt"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrelay/hookrelay/internal/event"
)

// PublishEvent stores a validated event on the events stream, on the
// subject of its type, with its id as Nats-Msg-Id, and waits for
// JetStream's ack. The bytes published are ev.Raw exactly. duplicate reports
// that JetStream already held a message with this id within its duplicate
// window and did not store it again.
func (p *Pipeline) PublishEvent(ctx context.Context, ev *event.Event) (duplicate bool, err error) {
	m := nats.NewMsg(p.cfg.Names.EventSubject(ev.Type))
	m.Data = ev.Raw
	ack, err := p.js.PublishMsg(ctx, m, jetstream.WithMsgID(ev.ID),
		jetstream.WithExpectStream(p.cfg.Names.EventsStream()))
	if err != nil {
		return false, fmt.Errorf("publish event %s: %w", ev.ID, err)
	}
	return ack.Duplicate, nil
}
