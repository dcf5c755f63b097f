package compose

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/hookrelay/hookrelay/internal/config"
)

// TestReadmeListsEverySetting keeps the README's configuration table in
// step with internal/config: every consumer flag and its environment
// variable must appear there.
func TestReadmeListsEverySetting(t *testing.T) {
	body, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(body)
	fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
	var cfg config.Consumer
	b := config.NewBinder(fs)
	cfg.Bind(b)
	fs.VisitAll(func(f *flag.Flag) {
		row := "| `--" + f.Name + "` | `" + b.Env(f.Name) + "` |"
		if !strings.Contains(readme, row) {
			t.Errorf("README.md has no configuration row starting %s", row)
		}
	})
}
