package webui_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/internal/webui"
)

func get(t *testing.T, srv *httptest.Server, method, path, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

// TestPage: the page and its assets come with the strict CSP, reference
// nothing outside the origin and hold no inline script; other paths reach
// the API handler.
func TestPage(t *testing.T) {
	t.Parallel()
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	srv := httptest.NewServer(webui.Handler(api))
	t.Cleanup(srv.Close)
	for path, ctype := range map[string]string{"/": "text/html", "/ui/app.js": "text/javascript", "/ui/report.css": "text/css"} {
		resp, body := get(t, srv, http.MethodGet, path, "")
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), ctype) {
			t.Errorf("GET %s: %d %s", path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-") {
			t.Errorf("GET %s: CSP %q", path, csp)
		}
		if m := regexp.MustCompile(`(?i)(https?:)?//[a-z0-9.-]+\.[a-z]{2,}`).FindString(body); m != "" {
			t.Errorf("GET %s references %q", path, m)
		}
		if path == "/" {
			if strings.Contains(body, "<script>") || regexp.MustCompile(`(?i)\son[a-z]+=`).MatchString(body) || strings.Contains(body, "<style") {
				t.Error("the page holds inline script or style")
			}
		}
	}
	if resp, _ := get(t, srv, http.MethodGet, "/v1/anything", ""); resp.StatusCode != http.StatusTeapot {
		t.Errorf("API route: %d", resp.StatusCode)
	}
	if resp, _ := get(t, srv, http.MethodGet, "/ui/nothing.js", ""); resp.StatusCode != http.StatusTeapot {
		t.Errorf("unknown asset went to %d, want the API's 418", resp.StatusCode)
	}
	for _, body := range []string{"", "{}", `{"result":{"appraisal":null}}`, "<html>"} {
		resp, _ := get(t, srv, http.MethodPost, "/ui/report", body)
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Content-Type") != "application/problem+json" {
			t.Errorf("POST /ui/report %q: %d %s", body, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
}

// TestReportEscapes: values from the result are escaped in the fragment.
func TestReportEscapes(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(webui.Handler(http.NotFoundHandler()))
	t.Cleanup(srv.Close)
	body := `{"result":{"authentic":false,"allow":false,"ear_status":"contraindicated","tee":"tdx","reason":"<script>alert(1)</script>",
"appraisal":{"allow":false,"failed":[{"rule":"authentic","expected":"authentic evidence","actual":"<img src=x onerror=alert(1)>"}],"policy_id":"default","policy_version":"1","trust_vector":{},"time":"2026-01-01T00:00:00Z"},
"trust_vector":{}},"token":"a.b.c"}`
	resp, html := get(t, srv, http.MethodPost, "/ui/report", body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /ui/report: %d %s", resp.StatusCode, html)
	}
	if strings.Contains(html, "<script>") || strings.Contains(html, "<img") {
		t.Errorf("unescaped input in %s", html)
	}
	if !strings.Contains(html, `data-verdict="not-authentic"`) || !strings.Contains(html, "&lt;script&gt;") {
		t.Errorf("fragment: %s", html)
	}
}
