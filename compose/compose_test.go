// Package compose checks the files that run hookrelay outside its Go code:
// docker-compose.yml, loaded with the compose-spec loader (the one Docker
// Compose itself uses, since no Docker engine runs where the tests do), and
// the README's table of settings.
package compose

import (
	"context"
	"flag"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"

	"github.com/hookrelay/hookrelay/internal/config"
)

const composeFile = "../docker-compose.yml"

const testToken = "compose-test-token"

func load(t *testing.T, env map[string]string) (*types.Project, error) {
	t.Helper()
	path, err := filepath.Abs(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	body, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	details := types.ConfigDetails{
		WorkingDir:  filepath.Dir(path),
		ConfigFiles: []types.ConfigFile{{Filename: path, Content: body}},
		Environment: env,
	}
	return loader.LoadWithContext(context.Background(), details,
		func(o *loader.Options) { o.SetProjectName("hookrelay", true) })
}

func mustLoad(t *testing.T) *types.Project {
	t.Helper()
	p, err := load(t, map[string]string{"HOOKRELAY_API_TOKEN": testToken})
	if err != nil {
		t.Fatalf("load %s: %v", composeFile, err)
	}
	return p
}

func service(t *testing.T, p *types.Project, name string) types.ServiceConfig {
	t.Helper()
	s, err := p.GetService(name)
	if err != nil {
		t.Fatalf("service %s: %v", name, err)
	}
	return s
}

func TestServices(t *testing.T) {
	p := mustLoad(t)
	names := p.ServiceNames()
	slices.Sort(names)
	if want := []string{"consumer", "nats", "postgres"}; !slices.Equal(names, want) {
		t.Fatalf("services = %v, want %v", names, want)
	}
}

func TestLoadFailsWithoutAPIToken(t *testing.T) {
	for name, env := range map[string]map[string]string{
		"unset": {},
		"empty": {"HOOKRELAY_API_TOKEN": ""},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := load(t, env)
			if err == nil {
				t.Fatal("loaded without HOOKRELAY_API_TOKEN; want an error")
			}
			if !strings.Contains(err.Error(), "HOOKRELAY_API_TOKEN") {
				t.Errorf("error %q does not name HOOKRELAY_API_TOKEN", err)
			}
		})
	}
}

// consumerEnvNames are the environment variables of the consumer's
// settings, as internal/config binds them.
func consumerEnvNames(t *testing.T) map[string]string {
	t.Helper()
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	var cfg config.Consumer
	b := config.NewBinder(fs)
	cfg.Bind(b)
	names := map[string]string{}
	fs.VisitAll(func(f *flag.Flag) { names[b.Env(f.Name)] = f.Name })
	return names
}

func TestConsumerEnvironment(t *testing.T) {
	c := service(t, mustLoad(t), "consumer")
	known := consumerEnvNames(t)
	for _, env := range []string{"NATS_URL", "DATABASE_URL", "HOOKRELAY_HTTP_ADDR",
		"HOOKRELAY_API_TOKEN"} {
		if _, ok := known[env]; !ok {
			t.Errorf("config binds no flag to %s", env)
		}
		if v := c.Environment[env]; v == nil || *v == "" {
			t.Errorf("consumer environment lacks %s", env)
		}
	}
	for env := range c.Environment {
		if _, ok := known[env]; !ok {
			t.Errorf("consumer environment sets %s, which no consumer setting reads", env)
		}
	}
	get := func(k string) string {
		if v := c.Environment[k]; v != nil {
			return *v
		}
		return ""
	}
	if got := get("HOOKRELAY_API_TOKEN"); got != testToken {
		t.Errorf("HOOKRELAY_API_TOKEN = %q, want it from the environment (%q)", got, testToken)
	}
	assertHost(t, "NATS_URL", get("NATS_URL"), "nats", "4222")
	assertHost(t, "DATABASE_URL", get("DATABASE_URL"), "postgres", "5432")
	if host, port, err := net.SplitHostPort(get("HOOKRELAY_HTTP_ADDR")); err != nil ||
		host != "0.0.0.0" || port != "8080" {
		t.Errorf("HOOKRELAY_HTTP_ADDR = %q, want 0.0.0.0:8080", get("HOOKRELAY_HTTP_ADDR"))
	}
}

func assertHost(t *testing.T, name, raw, host, port string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Errorf("%s = %q: %v", name, raw, err)
		return
	}
	if u.Hostname() != host || u.Port() != port {
		t.Errorf("%s = %q, want host %s port %s", name, raw, host, port)
	}
}

// TestConsumerSettingsValidate feeds the consumer's environment to the
// configuration, as the daemon would read it at start-up.
func TestConsumerSettingsValidate(t *testing.T) {
	c := service(t, mustLoad(t), "consumer")
	for _, env := range os.Environ() {
		if k, _, _ := strings.Cut(env, "="); strings.HasPrefix(k, "HOOKRELAY_") ||
			k == "NATS_URL" || k == "DATABASE_URL" {
			t.Setenv(k, "")
		}
	}
	for k, v := range c.Environment {
		if v != nil {
			t.Setenv(k, *v)
		}
	}
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	var cfg config.Consumer
	b := config.NewBinder(fs)
	cfg.Bind(b)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(b); err != nil {
		t.Fatalf("consumer settings from docker-compose.yml: %v", err)
	}
	if cfg.HTTPAddr != "0.0.0.0:8080" || cfg.APIToken != testToken ||
		cfg.NATSURL != "nats://nats:4222" {
		t.Errorf("settings = http %q, token %q, nats %q", cfg.HTTPAddr, cfg.APIToken, cfg.NATSURL)
	}
}

func TestConsumerBuildAndPorts(t *testing.T) {
	c := service(t, mustLoad(t), "consumer")
	if c.Build == nil {
		t.Fatal("consumer has no build section")
	}
	if _, err := os.Stat(filepath.Join(c.Build.Context, c.Build.Dockerfile)); err != nil {
		t.Errorf("consumer Dockerfile: %v", err)
	}
	var published bool
	for _, p := range c.Ports {
		if p.Target == 8080 && p.Published == "8080" {
			published = true
		}
	}
	if !published {
		t.Errorf("consumer ports = %+v, want container port 8080 published as 8080", c.Ports)
	}
}

func TestNATSHasJetStream(t *testing.T) {
	n := service(t, mustLoad(t), "nats")
	if !strings.HasPrefix(n.Image, "nats:2.10") {
		t.Errorf("nats image = %q, want nats:2.10", n.Image)
	}
	if !slices.Contains(n.Command, "-js") && !slices.Contains(n.Command, "--jetstream") {
		t.Errorf("nats command = %q: JetStream is off (want -js)", n.Command)
	}
	if n.HealthCheck == nil || len(n.HealthCheck.Test) == 0 {
		t.Error("nats has no health check")
	}
}

func TestPostgres(t *testing.T) {
	pg := service(t, mustLoad(t), "postgres")
	if !strings.HasPrefix(pg.Image, "postgres:16") {
		t.Errorf("postgres image = %q, want postgres:16", pg.Image)
	}
	if pg.HealthCheck == nil || !slices.Contains(pg.HealthCheck.Test, "pg_isready") {
		t.Errorf("postgres health check = %+v, want pg_isready", pg.HealthCheck)
	}
}

func TestConsumerWaitsForHealthyDependencies(t *testing.T) {
	p := mustLoad(t)
	c := service(t, p, "consumer")
	for _, dep := range []string{"nats", "postgres"} {
		d, ok := c.DependsOn[dep]
		if !ok {
			t.Errorf("consumer does not depend on %s", dep)
			continue
		}
		if d.Condition != types.ServiceConditionHealthy {
			t.Errorf("consumer depends on %s with condition %q, want %q", dep, d.Condition,
				types.ServiceConditionHealthy)
		}
		if s := service(t, p, dep); s.HealthCheck == nil || s.HealthCheck.Disable {
			t.Errorf("%s has no health check for the consumer to wait on", dep)
		}
	}
}
