package stream

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"
)

// Task is one delivery attempt to make: a message on the deliveries stream.
// Attempt is the number of the attempt the task stands for, so a task whose
// attempt was already made is recognised as stale and dropped.
type Task struct {
	DeliveryID int64     `json:"delivery_id"`
	Attempt    int       `json:"attempt"`
	NotBefore  time.Time `json:"not_before,omitzero"`
	// Nonce makes an operator's requeue a task of its own, not a duplicate
	// of the scheduled task for the same attempt.
	Nonce string `json:"nonce,omitempty"`
}

// MsgID is the Nats-Msg-Id of the task: the same task published twice within
// the duplicate window is stored once.
func (t Task) MsgID() string {
	id := "dlv-" + strconv.FormatInt(t.DeliveryID, 10) + "-" + strconv.Itoa(t.Attempt)
	if t.Nonce != "" {
		id += "-" + t.Nonce
	}
	return id
}

// Encode returns the task's message body.
func (t Task) Encode() []byte {
	b, _ := json.Marshal(t)
	return b
}

// DecodeTask parses a task message body.
func DecodeTask(b []byte) (Task, error) {
	var t Task
	if err := json.Unmarshal(b, &t); err != nil {
		return t, fmt.Errorf("decode task: %w", err)
	}
	if t.DeliveryID <= 0 || t.Attempt <= 0 {
		return t, fmt.Errorf("decode task: delivery_id and attempt must be positive")
	}
	return t, nil
}
