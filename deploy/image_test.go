package deploy_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// envImage enables TestImage (make test-full sets it where buildah runs).
const envImage = "TDPROOF_TEST_IMAGE"

// TestImage builds the image with buildah from scratch (no pull), checks
// its configuration, and smoke-tests it: the binary runs as the image's
// non-root user, and serve starts with its state in the /data volume.
func TestImage(t *testing.T) {
	if os.Getenv(envImage) != "1" {
		t.Skip(envImage + "=1 not set: the image is not built (make test-full sets it when buildah is installed; the Containerfile lint ran)")
	}
	buildah, err := exec.LookPath("buildah")
	if err != nil {
		t.Fatalf("%s=1 but buildah is not installed: %v", envImage, err)
	}
	tmp := t.TempDir()
	ctxDir := filepath.Join(tmp, "context")
	if err := os.MkdirAll(ctxDir, 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 15*time.Minute)
	defer cancel()
	run := func(name string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, name, args...)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	// The image's binary, built as make image builds it.
	run("go", "build", "-trimpath", "-o", filepath.Join(ctxDir, "tdproof"), "../cmd/tdproof")
	ca, err := os.ReadFile("/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		t.Fatalf("CA bundle: %v", err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "ca-certificates.crt"), ca, 0o644); err != nil {
		t.Fatal(err)
	}
	cf, err := os.ReadFile("container/Containerfile")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(ctxDir, "Containerfile"), cf, 0o644); err != nil {
		t.Fatal(err)
	}
	store := []string{"--root", filepath.Join(tmp, "root"), "--runroot", filepath.Join(tmp, "runroot"), "--storage-driver", "vfs"}
	b := func(args ...string) string { return run(buildah, append(append([]string{}, store...), args...)...) }
	b("bud", "--isolation", "chroot", "-f", filepath.Join(ctxDir, "Containerfile"), "-t", "tdproof-test", ctxDir)

	var img struct {
		OCIv1 struct {
			Config struct {
				User       string              `json:"User"`
				Entrypoint []string            `json:"Entrypoint"`
				Volumes    map[string]struct{} `json:"Volumes"`
			} `json:"config"`
		} `json:"OCIv1"`
	}
	if err := json.Unmarshal([]byte(b("inspect", "--type", "image", "tdproof-test")), &img); err != nil {
		t.Fatal(err)
	}
	cfg := img.OCIv1.Config
	if cfg.User != "65532:65532" || len(cfg.Entrypoint) != 1 || cfg.Entrypoint[0] != "/tdproof" {
		t.Errorf("image config %+v", cfg)
	}
	if _, ok := cfg.Volumes["/data"]; !ok {
		t.Errorf("image volumes %v, want /data", cfg.Volumes)
	}

	ctr := strings.TrimSpace(b("from", "tdproof-test"))
	t.Cleanup(func() { _ = exec.Command(buildah, append(append([]string{}, store...), "rm", ctr)...).Run() })
	if out := b("run", "--isolation", "chroot", "--user", "65532:65532", ctr, "--", "/tdproof", "--version"); !strings.HasPrefix(out, "tdproof ") {
		t.Errorf("--version in the image: %q", out)
	}
	// serve as the image's user: it writes its database and self-signed
	// certificate to the /data volume (TDPROOF_DATA_DIR) and listens.
	cmd := exec.CommandContext(ctx, buildah, append(append([]string{}, store...), "run", "--isolation", "chroot", "--user", "65532:65532",
		ctr, "--", "/tdproof", "serve", "--listen", "127.0.0.1:0", "--tls-self-signed", "--role", "verifier", "--offline", "--collateral-dir", "/data")...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l := <-line:
		if !strings.HasPrefix(l, "serve: listening on https://127.0.0.1:") {
			t.Fatalf("serve in the image: %q\n%s", l, stderr.String())
		}
	case <-time.After(2 * time.Minute):
		t.Fatalf("serve in the image did not start:\n%s", stderr.String())
	}
}
