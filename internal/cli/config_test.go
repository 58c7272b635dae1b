package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// configHarness is a root and a command with a few flags of each kind,
// wired like serve: TDPROOF_* through the root's applyEnv, then the file.
type configHarness struct {
	listen, dataDir string
	maxBody         int64
	offline         bool
	statuses        []string
	trustedRoot     string
}

func runConfigHarness(t *testing.T, environ map[string]string, args ...string) (*configHarness, error) {
	t.Helper()
	a := &app{stdin: bytes.NewReader(nil), stdout: new(bytes.Buffer), stderr: new(bytes.Buffer),
		lookupEnv: func(k string) (string, bool) { v, ok := environ[k]; return v, ok }}
	h := &configHarness{}
	root := &cobra.Command{Use: "tdproof", PersistentPreRunE: a.applyEnv, SilenceErrors: true, SilenceUsage: true}
	c := &cobra.Command{Use: "serve", Args: cobra.NoArgs, RunE: func(*cobra.Command, []string) error { return nil }}
	fl := c.Flags()
	fl.StringVar(&h.listen, "listen", "127.0.0.1:8080", "")
	fl.StringVar(&h.dataDir, "data-dir", "./tdproof-data", "")
	fl.Int64Var(&h.maxBody, "max-body", 1, "")
	fl.BoolVar(&h.offline, "offline", false, "")
	fl.StringSliceVar(&h.statuses, "accept-status", nil, "")
	fl.StringVar(&h.trustedRoot, "trusted-root", "", "")
	commandLineOnly(fl, "trusted-root")
	a.withConfigFile(c)
	root.AddCommand(c)
	root.SetArgs(append([]string{"serve"}, args...))
	root.SetOut(new(bytes.Buffer))
	root.SetErr(new(bytes.Buffer))
	err := root.ExecuteContext(t.Context())
	return h, err
}

func TestConfigPrecedence(t *testing.T) {
	t.Parallel()
	file := writeFile(t, t.TempDir(), "tdproof.yaml", []byte(`# serve settings
listen: 0.0.0.0:1000
data_dir: /from/file
max_body: 4096
offline: true
accept_status: [UpToDate, SWHardeningNeeded]
`))
	for _, tc := range []struct {
		name    string
		environ map[string]string
		args    []string
		listen  string
		dataDir string
	}{
		{"file only", nil, nil, "0.0.0.0:1000", "/from/file"},
		{"env over file", map[string]string{"TDPROOF_LISTEN": "10.0.0.1:2000"}, nil, "10.0.0.1:2000", "/from/file"},
		{"flag over env and file", map[string]string{"TDPROOF_LISTEN": "10.0.0.1:2000"}, []string{"--listen", "127.0.0.1:3000"}, "127.0.0.1:3000", "/from/file"},
		{"config from env", map[string]string{"TDPROOF_CONFIG": file, "TDPROOF_DATA_DIR": "/from/env"}, nil, "0.0.0.0:1000", "/from/env"},
	} {
		args := tc.args
		if tc.environ["TDPROOF_CONFIG"] == "" {
			args = append(args, "--config", file)
		}
		h, err := runConfigHarness(t, tc.environ, args...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if h.listen != tc.listen || h.dataDir != tc.dataDir || h.maxBody != 4096 || !h.offline ||
			strings.Join(h.statuses, ",") != "UpToDate,SWHardeningNeeded" {
			t.Errorf("%s: %+v", tc.name, h)
		}
	}
	// Without --config: the defaults.
	h, err := runConfigHarness(t, nil)
	if err != nil || h.listen != "127.0.0.1:8080" || h.dataDir != "./tdproof-data" || h.offline {
		t.Errorf("defaults: %+v %v", h, err)
	}
}

func TestConfigErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for name, body := range map[string]string{
		"unknown":      "listen: 127.0.0.1:1\nlisten_addr: x\n",
		"dashed":       "data-dir: x\n",
		"command-line": "trusted_root: root.pem\n",
		"config":       "config: other.yaml\n",
		"help":         "help: true\n",
		"type":         "max_body: lots\n",
		"mapping":      "listen:\n  host: x\n",
		"null":         "listen:\n",
		"duplicate":    "listen: a\nlisten: b\n",
		"not a map":    "- listen\n",
		"syntax":       "listen: [\n",
	} {
		file := writeFile(t, dir, strings.ReplaceAll(name, " ", "_")+".yaml", []byte(body))
		_, err := runConfigHarness(t, nil, "--config", file)
		if err == nil {
			t.Errorf("%s: no error", name)
			continue
		}
		if code, _ := classify(err); code != exitUsage {
			t.Errorf("%s: exit %d: %v", name, code, err)
		}
	}
	if _, err := runConfigHarness(t, nil, "--config", filepath.Join(dir, "missing.yaml")); err == nil {
		t.Error("missing file: no error")
	}
	// An empty file or a comment-only file sets nothing.
	for _, body := range []string{"", "# nothing\n", "---\n"} {
		file := writeFile(t, dir, "empty.yaml", []byte(body))
		if h, err := runConfigHarness(t, nil, "--config", file); err != nil || h.listen != "127.0.0.1:8080" {
			t.Errorf("%q: %+v %v", body, h, err)
		}
	}
}

// TestServeConfig: serve reads --config; the --listen flag wins over the
// file's listen, the file's data_dir applies.
func TestServeConfig(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	file := writeFile(t, t.TempDir(), "serve.yaml", []byte("listen: not-an-address\ndata_dir: "+data+
		"\noffline: true\ncollateral_dir: "+t.TempDir()+"\nlog_level: warn\n"))
	s := startServe(t, "--config", file)
	if code := s.stop(); code != exitOK {
		t.Fatalf("serve exited %d:\n%s", code, s.stderr.String())
	}
	if _, err := os.Stat(filepath.Join(data, "tdproof.db")); err != nil {
		t.Errorf("database not in the configured data_dir: %v", err)
	}
	bad := writeFile(t, t.TempDir(), "bad.yaml", []byte("listen: 127.0.0.1:0\nport: 80\n"))
	o := invoke(t, nil, "serve", "--config", bad)
	o.wantCode(t, exitUsage)
	if !strings.Contains(o.stderr, `unknown key "port"`) {
		t.Errorf("stderr %q", o.stderr)
	}
}
