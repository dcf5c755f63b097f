package main

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// benchEnv is the running processes of a bench.
type benchEnv struct {
	recvURL   string
	slowURL   string // answers after 2s
	failURL   string // answers 500
	apiURLs   []string
	secret    string
	procs     []*exec.Cmd
	consumers []int // pids
}

func startProcesses(o options) (*benchEnv, error) {
	e := &benchEnv{secret: newSecret()}
	if err := e.startReceiver(o); err != nil {
		e.stop()
		return nil, err
	}
	for i := range o.consumers {
		if err := e.startConsumer(o, i); err != nil {
			e.stop()
			return nil, err
		}
	}
	return e, nil
}

func (e *benchEnv) startReceiver(o options) error {
	var err error
	if e.recvURL, err = e.receiver(o); err != nil {
		return err
	}
	if e.slowURL, err = e.receiver(o, "--delay", "2s"); err != nil {
		return err
	}
	e.failURL, err = e.receiver(o, "--status", "500")
	return err
}

// receiver starts a receiver process and returns its URL.
func (e *benchEnv) receiver(o options, args ...string) (string, error) {
	args = append([]string{"--addr", "127.0.0.1:0", "--secret", e.secret}, args...)
	cmd := exec.Command(filepath.Join(o.workDir, "bin", "receiver"), args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", err
	}
	if err := cmd.Start(); err != nil {
		return "", fmt.Errorf("start receiver: %w", err)
	}
	e.procs = append(e.procs, cmd)
	line, err := waitLine(out, "listening on ")
	if err != nil {
		return "", fmt.Errorf("receiver: %w", err)
	}
	return strings.TrimPrefix(line, "listening on "), nil
}

func (e *benchEnv) startConsumer(o options, i int) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(o.workDir, fmt.Sprintf("consumer-%d.log", i)))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(o.workDir, "bin", "consumer"))
	cmd.Env = append(os.Environ(), "NATS_URL="+o.natsURL, "DATABASE_URL="+databaseURL(o.pgURL),
		"HOOKRELAY_PREFIX="+prefix, "HOOKRELAY_HTTP_ADDR="+addr, "HOOKRELAY_API_TOKEN=",
		"HOOKRELAY_ALLOW_CIDRS=127.0.0.0/8", "HOOKRELAY_LOG_LEVEL="+o.logLevel,
		"HOOKRELAY_CONCURRENCY="+strconv.Itoa(o.concurrency))
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start consumer: %w", err)
	}
	e.procs = append(e.procs, cmd)
	e.consumers = append(e.consumers, cmd.Process.Pid)
	e.apiURLs = append(e.apiURLs, "http://"+addr)
	return waitReady("http://" + addr + "/readyz")
}

func waitReady(url string) error {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("%s not ready after 60s", url)
}

func (e *benchEnv) stop() {
	for _, p := range e.procs {
		_ = p.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range e.procs {
		_ = p.Wait()
	}
}

func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// cpuTicks is the user and system time of processes, from /proc.
type cpuTicks map[int]time.Duration

// clockTick is the kernel's USER_HZ, 100 on Linux.
const clockTick = 10 * time.Millisecond

// cpuSample is the CPU time used so far by each process of a kind.
type cpuSample map[int]time.Duration

// sampleCPU reads the CPU time used so far by the consumers, nats-server
// and every postgres process.
func (e *benchEnv) sampleCPU() [3]cpuSample {
	return [3]cpuSample{
		sampleOf(e.consumers), sampleOf(pidsNamed("nats-server")),
		sampleOf(pidsNamed("postgres")),
	}
}

func sampleOf(pids []int) cpuSample {
	out := cpuSample{}
	for _, pid := range pids {
		out[pid] = procCPU(pid)
	}
	return out
}

// since is the CPU used between two samples: by the processes present in
// both, and all of it for those started meanwhile (such as a database
// connection opened during the run). A process that ended meanwhile cannot
// be accounted.
func (s cpuSample) since(before cpuSample) time.Duration {
	var d time.Duration
	for pid, t := range s {
		d += t - before[pid]
	}
	return d
}

func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which may hold spaces, end with ')'.
	fields := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * clockTick
}

func pidsNamed(name string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err == nil && strings.TrimSpace(string(comm)) == name {
			pids = append(pids, pid)
		}
	}
	return pids
}

// rssMB is a process's resident memory in MB.
func rssMB(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			kb, _ := strconv.ParseFloat(strings.Fields(line)[1], 64)
			return kb / 1024
		}
	}
	return 0
}
