package api

import (
	"net/http"

	"github.com/hookrelay/hookrelay/internal/db"
)

// rejectedJSON is a message the consumer refused, with the reason.
type rejectedJSON struct {
	ID         int64  `json:"id"`
	Subject    string `json:"subject"`
	StreamSeq  uint64 `json:"stream_seq"`
	MsgID      string `json:"msg_id"`
	Reason     string `json:"reason"`
	Head       string `json:"head"`
	Size       int    `json:"size"`
	ReceivedAt string `json:"received_at"`
}

func (s *server) listRejected(w http.ResponseWriter, r *http.Request) error {
	v, err := listParams(r.URL.RawQuery, "limit", "cursor")
	if err != nil {
		return err
	}
	limit, err := parseLimit(v)
	if err != nil {
		return err
	}
	before, err := parseIDCursor(v, "rej")
	if err != nil {
		return err
	}
	rows, err := s.store.ListRejected(r.Context(), before, limit+1)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(rows, limit, rejectedOut, rejectedCursor))
	return nil
}

func rejectedCursor(m db.Rejected) string {
	return idCursor("rej", m.ID)
}

func rejectedOut(m db.Rejected) rejectedJSON {
	return rejectedJSON{
		ID: m.ID, Subject: m.Subject, StreamSeq: m.StreamSeq, MsgID: m.MsgID,
		Reason: m.Reason, Head: m.Head, Size: m.Size, ReceivedAt: formatTime(m.ReceivedAt),
	}
}
