package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestAgentSimulate: agent --simulate records the boot events, answers
// /Info on its unix socket and stops when its context ends.
func TestAgentSimulate(t *testing.T) {
	t.Parallel()
	dir, err := os.MkdirTemp("", "tdp-agent-") // short: unix socket paths are limited
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	compose := filepath.Join(dir, "app-compose.json")
	if err := os.WriteFile(compose, []byte(`{"manifest_version":2,"name":"t","runner":"docker-compose","docker_compose_file":""}`), 0o600); err != nil {
		t.Fatal(err)
	}
	sock, logf := filepath.Join(dir, "a.sock"), filepath.Join(dir, "events.log")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stdout, stderr := newSyncBuffer(), newSyncBuffer()
	done := make(chan int, 1)
	var firstLine string
	args := []string{"agent", "--simulate", "--socket", sock, "--log", logf, "--app-compose", compose}
	go func() {
		done <- run(ctx, args, func(string) (string, bool) { return "", false }, bytes.NewReader(nil), stdout, stderr)
	}()
	select {
	case line := <-stdout.first:
		if !strings.HasPrefix(line, "agent: serving on "+sock) {
			t.Fatalf("first line %q", line)
		}
		firstLine = line
	case code := <-done:
		t.Fatalf("agent exited %d:\n%s", code, stderr.String())
	}
	c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		}}}
	resp, err := c.Post("http://agent/Info", "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/Info: %d %s %v", resp.StatusCode, body, err)
	}
	var info map[string]any
	if err := json.Unmarshal(body, &info); err != nil {
		t.Fatal(err)
	}
	if id, _ := info["app_id"].(string); len(id) != 40 {
		t.Errorf("/Info app_id %q: %s", id, body)
	} else if !strings.Contains(firstLine, "(app id "+id+", compose hash ") {
		// The app id is printed once hex-encoded, as /Info reports it.
		t.Errorf("first line %q does not name app id %s", firstLine, id)
	}
	events, err := os.ReadFile(logf)
	if err != nil || !bytes.Contains(events, []byte("system-ready")) {
		t.Errorf("runtime log: %v\n%s", err, events)
	}
	cancel()
	if code := <-done; code != exitOK {
		t.Fatalf("agent exited %d:\n%s", code, stderr.String())
	}
	if code := invoke(t, nil, "agent", "--simulate", "--socket", sock).code; code != exitUsage {
		t.Errorf("agent without --log: exit %d", code)
	}
}
