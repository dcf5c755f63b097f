package api

import (
	"context"
	"fmt"
	"net/http"

	"go.uber.org/zap"
)

func healthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

// readyz answers 200 when Ready passes and 503 naming what failed.
func (s *server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	if err := s.ready(ctx); err != nil {
		s.log.Warn("not ready", zap.Error(err))
		writeJSON(w, http.StatusServiceUnavailable, errorBody(&apiError{
			status: http.StatusServiceUnavailable, code: codeNotReady,
			message: "not ready: " + err.Error(),
		}))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// pingStore is the readiness check when Config.Ready is nil.
func (s *server) pingStore(ctx context.Context) error {
	if s.store == nil {
		return nil
	}
	if err := s.store.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: %w", err)
	}
	return nil
}
