// Package natstest starts a private NATS server with JetStream for a test:
// embedded by default, or the machine's nats-server binary when
// HOOKRELAY_TEST_NATS_BINARY names one, so that the suite also runs against
// the server version deployed (2.9 on Debian).
package natstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// BinaryEnv names the nats-server binary to use instead of the embedded one.
const BinaryEnv = "HOOKRELAY_TEST_NATS_BINARY"

// Server is a NATS server private to one test, shut down when it ends.
type Server struct {
	URL      string
	t        testing.TB
	port     int
	storeDir string
	embedded *server.Server
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the binary's process ends
}

// Start starts a server on a random loopback port with its store in a
// temporary directory.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, storeDir: t.TempDir()}
	t.Cleanup(s.Shutdown)
	// Another process may take the free port before the server binds it;
	// then the server exits at once and a new port is tried.
	for try := 0; ; try++ {
		s.port = freePort(t)
		s.URL = "nats://127.0.0.1:" + strconv.Itoa(s.port)
		if s.tryStart() || try == 4 {
			break
		}
	}
	s.waitReady()
	return s
}

// Restart stops the server and starts it again on the same port and store.
func (s *Server) Restart() {
	s.t.Helper()
	s.Shutdown()
	s.tryStart()
	s.waitReady()
}

// Shutdown stops the server; it is safe to call twice.
func (s *Server) Shutdown() {
	if s.embedded != nil {
		s.embedded.Shutdown()
		s.embedded.WaitForShutdown()
		s.embedded = nil
	}
	if s.cmd != nil {
		_ = s.cmd.Process.Kill()
		<-s.exited
		s.cmd = nil
	}
}

// tryStart starts the server and reports false when it could not listen.
func (s *Server) tryStart() bool {
	s.t.Helper()
	if bin := os.Getenv(BinaryEnv); bin != "" {
		return s.startBinary(bin)
	}
	return s.startEmbedded()
}

func (s *Server) startEmbedded() bool {
	opts := &server.Options{
		Host: "127.0.0.1", Port: s.port, JetStream: true, StoreDir: s.storeDir,
		NoLog: true, NoSigs: true, ServerName: "natstest",
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		s.t.Fatalf("embedded nats server: %v", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		srv.Shutdown()
		return false
	}
	s.embedded = srv
	return true
}

func (s *Server) startBinary(bin string) bool {
	log := filepath.Join(s.storeDir, "nats-server.log")
	s.cmd = exec.Command(bin, "-a", "127.0.0.1", "-p", strconv.Itoa(s.port), "-js",
		"-sd", s.storeDir, "-l", log, "-n", "natstest")
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start %s: %v", bin, err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.exited)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		select {
		case <-s.exited:
			s.cmd = nil
			return false
		default:
		}
		if s.probe() == nil {
			return true
		}
		time.Sleep(20 * time.Millisecond) // the poll interval of this helper
	}
	return true // waitReady reports a server that never answers
}

// waitReady polls until the server accepts a connection with JetStream on.
func (s *Server) waitReady() {
	s.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := s.probe()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats server on %s not ready: %v", s.URL, err)
		}
		time.Sleep(20 * time.Millisecond) // the one poll interval of this helper
	}
}

func (s *Server) probe() error {
	nc, err := nats.Connect(s.URL, nats.Timeout(time.Second))
	if err != nil {
		return err
	}
	defer nc.Close()
	_, err = nc.Request("$JS.API.INFO", nil, time.Second)
	return err
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Describe names the kind of server in use, for test logs.
func Describe() string {
	if bin := os.Getenv(BinaryEnv); bin != "" {
		return fmt.Sprintf("binary %s", bin)
	}
	return "embedded"
}
