// Package api serves hookrelay's admin HTTP API: webhook endpoints, the
// delivery history, rejected messages, liveness, readiness and metrics.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	"go.uber.org/zap"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/dispatch"
	"github.com/hookrelay/hookrelay/internal/event"
	"github.com/hookrelay/hookrelay/internal/pipeline"
)

// readyTimeout bounds one readiness check.
const readyTimeout = 5 * time.Second

// Config is what the API needs to answer.
type Config struct {
	// Store holds endpoints and the delivery history.
	Store *db.Store
	// Guard checks endpoint URLs; nil refuses every private address.
	Guard *dispatch.Guard
	// Token, when set, must be sent as "Authorization: Bearer <token>" on
	// every route except /healthz and /readyz.
	Token string
	// Ready reports whether the service can work; its error names the
	// dependency that failed. Nil pings Store when there is one.
	Ready func(ctx context.Context) error
	// Log receives server-side errors; nil discards them.
	Log *zap.Logger
	// Metrics is served at /metrics when non-nil.
	Metrics http.Handler
	// Operator requeues deliveries and probes endpoints; without it those
	// routes answer 503.
	Operator Operator
	// SecretGrace is how long a rotated-out secret keeps signing; default
	// 24h.
	SecretGrace time.Duration
	// Events publishes the events of POST /v1/events; without it that route
	// answers 503.
	Events EventPublisher
	// MaxEventBytes is the size limit of a published event; default
	// event.DefaultMaxBytes (256 KiB).
	MaxEventBytes int
}

// Operator is what the operator routes need from the delivery pipeline.
type Operator interface {
	// Requeue publishes the tasks of deliveries made due again.
	Requeue(ctx context.Context, due []db.Due) error
	// Probe sends one signed test event to an endpoint now.
	Probe(ctx context.Context, e db.Endpoint) pipeline.ProbeResult
}

type server struct {
	store    *db.Store
	guard    *dispatch.Guard
	ready    func(ctx context.Context) error
	log      *zap.Logger
	operator Operator
	grace    time.Duration
	events   EventPublisher
	maxEvent int
}

// New returns the admin API as an http.Handler.
func New(cfg Config) http.Handler {
	s := newServer(cfg)
	r := chi.NewRouter()
	r.Use(s.recoverer, authenticate(cfg.Token, s))
	r.NotFound(s.handle(routeNotFound))
	r.MethodNotAllowed(s.methodNotAllowed(r))
	r.Get("/healthz", healthz)
	r.Get("/readyz", s.readyz)
	if cfg.Metrics != nil {
		r.Method(http.MethodGet, "/metrics", cfg.Metrics)
	}
	r.Route("/v1", s.routesV1)
	return r
}

func newServer(cfg Config) *server {
	s := &server{store: cfg.Store, guard: cfg.Guard, ready: cfg.Ready, log: cfg.Log,
		operator: cfg.Operator, grace: cfg.SecretGrace,
		events: cfg.Events, maxEvent: cfg.MaxEventBytes}
	if s.grace <= 0 {
		s.grace = 24 * time.Hour
	}
	if s.maxEvent <= 0 {
		s.maxEvent = event.DefaultMaxBytes
	}
	if s.log == nil {
		s.log = zap.NewNop()
	}
	if s.guard == nil {
		s.guard = dispatch.NewGuard(nil)
	}
	if s.ready == nil {
		s.ready = s.pingStore
	}
	return s
}

func (s *server) routesV1(r chi.Router) {
	r.Post("/endpoints", s.handle(s.createEndpoint))
	r.Get("/endpoints", s.handle(s.listEndpoints))
	r.Get("/endpoints/{id}", s.handle(s.getEndpoint))
	r.Patch("/endpoints/{id}", s.handle(s.patchEndpoint))
	r.Delete("/endpoints/{id}", s.handle(takesNoBody(s.deleteEndpoint)))
	r.Post("/endpoints/{id}/rotate-secret", s.handle(takesNoBody(s.rotateSecret)))
	r.Post("/endpoints/{id}/recover", s.handle(s.recoverEndpoint))
	r.Post("/endpoints/{id}/probe", s.handle(takesNoBody(s.probeEndpoint)))
	r.Post("/deliveries/{id}/retry", s.handle(takesNoBody(s.retryDelivery)))
	r.Get("/deliveries", s.handle(s.listDeliveries))
	r.Get("/deliveries/{id}", s.handle(s.getDelivery))
	r.Get("/rejected", s.handle(s.listRejected))
	r.Post("/events", s.handle(s.createEvent))
	r.Get("/events", s.handle(s.listEvents))
	r.Get("/events/{id}", s.handle(s.getEvent))
	r.Get("/openapi.json", serveOpenAPI)
}

// handlerFunc is a handler whose error becomes the error response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

func (s *server) handle(h handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	}
}

// authenticate requires the bearer token on every route but the probes.
func authenticate(token string, s *server) func(http.Handler) http.Handler {
	want := sha256.Sum256([]byte(token))
	return func(next http.Handler) http.Handler {
		if token == "" {
			return next
		}
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if isProbe(r.URL.Path) || validToken(r.Header.Get("Authorization"), want) {
				next.ServeHTTP(w, r)
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer realm="hookrelay"`)
			s.writeError(w, r, errUnauthorized)
		})
	}
}

func isProbe(path string) bool {
	return path == "/healthz" || path == "/readyz"
}

// validToken compares digests so that neither the content nor the length
// of the token leaks through timing.
func validToken(header string, want [sha256.Size]byte) bool {
	const prefix = "bearer "
	if len(header) <= len(prefix) || !strings.EqualFold(header[:len(prefix)], prefix) {
		return false
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(header[len(prefix):])))
	return subtle.ConstantTimeCompare(got[:], want[:]) == 1
}

// recoverer turns a panic into a logged 500.
func (s *server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("panic in api handler", zap.Any("panic", v), zap.Stack("stack"),
				zap.String("method", r.Method), zap.String("path", r.URL.Path))
			writeJSON(w, http.StatusInternalServerError, errorBody(errInternal))
		}()
		next.ServeHTTP(w, r)
	})
}

func routeNotFound(http.ResponseWriter, *http.Request) error {
	return errRouteNotFound
}

// methodNotAllowed answers 405 with the Allow header chi would have set.
func (s *server) methodNotAllowed(routes chi.Routes) http.HandlerFunc {
	methods := []string{
		http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions,
	}
	return func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		for _, m := range methods {
			if routes.Match(chi.NewRouteContext(), m, path) {
				w.Header().Add("Allow", m)
			}
		}
		s.writeError(w, r, errMethodNotAllowed)
	}
}
