package verifiersvc_test

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/verifier"
)

// syncBuffer is a bytes.Buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestAccessLog: every request is one structured line with method, route
// pattern, status, duration and, for verifications, the outcome; request
// headers, bodies, paths and queries (tokens, evidence) never appear.
func TestAccessLog(t *testing.T) {
	t.Parallel()
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{PKI: sharedPKI(t)})
	if err != nil {
		t.Fatal(err)
	}
	q, err := f.BuildQuote()
	if err != nil {
		t.Fatal(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		t.Fatal(err)
	}
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	const secret = "s3cr3t-admin-token-value"
	e := newEnv(t, c, nil, f.Now, verifiersvc.Options{Logger: log, RefValues: pinned(t, q.Raw)}, verifier.WithTrustedRoot(f.PKI.Root.Certificate))

	nonce := "0123456789abcdef"
	body := mustJSON(t, map[string]any{"quote": hex.EncodeToString(q.Raw), "nonce": nonce})
	req, err := http.NewRequestWithContext(t.Context(), "POST", e.srv.URL+"/v1/verify?marker=querysecret", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// The access log line is written once the handler returns, which
	// may be after the client has read the response: wait for each
	// request's line before the next request, so their order is known.
	waitLines := func(n int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for strings.Count(logs.String(), `"msg":"http request"`) < n {
			if time.Now().After(deadline) {
				t.Fatalf("%d access log lines after 10 s, want %d:\n%s", strings.Count(logs.String(), `"msg":"http request"`), n, logs.String())
			}
			time.Sleep(time.Millisecond)
		}
	}
	waitLines(1)
	e.post(t, "/verify", []byte(`{"quote"`))
	waitLines(2)
	e.get(t, "/no/such/route/"+secret)
	waitLines(3)
	e.get(t, "/healthz")
	waitLines(4)

	type line struct {
		Level    string  `json:"level"`
		Msg      string  `json:"msg"`
		Method   string  `json:"method"`
		Route    string  `json:"route"`
		Status   int     `json:"status"`
		Duration float64 `json:"duration"`
		Outcome  string  `json:"outcome"`
	}
	var got []line
	for l := range strings.Lines(logs.String()) {
		var x line
		if err := json.Unmarshal([]byte(l), &x); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		if x.Msg == "http request" {
			got = append(got, x)
		}
	}
	want := []line{
		{Level: "INFO", Method: "POST", Route: "/v1/verify", Status: 200, Outcome: "contraindicated"}, // the nonce is not in REPORTDATA,
		{Level: "INFO", Method: "POST", Route: "/verify", Status: 400, Outcome: "malformed_request"},
		{Level: "INFO", Method: "GET", Route: "unmatched", Status: 404},
		{Level: "DEBUG", Method: "GET", Route: "/healthz", Status: 200},
	}
	if len(got) != len(want) {
		t.Fatalf("%d access log lines, want %d:\n%s", len(got), len(want), logs.String())
	}
	for i, w := range want {
		g := got[i]
		if g.Level != w.Level || g.Method != w.Method || g.Route != w.Route || g.Status != w.Status || g.Outcome != w.Outcome || g.Duration <= 0 {
			t.Errorf("line %d: %+v, want %+v with a duration", i, g, w)
		}
	}
	for _, leak := range []string{secret, "querysecret", nonce, hex.EncodeToString(q.Raw[:32])} {
		if strings.Contains(logs.String(), leak) {
			t.Errorf("the log contains %q:\n%s", leak, logs.String())
		}
	}
}

// TestAccessLogWrapped: a handler served next to the service (the key
// broker) is logged with its own route pattern, or the fallback route.
func TestAccessLogWrapped(t *testing.T) {
	t.Parallel()
	var logs syncBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	svc := newEnv(t, nil, nil, time.Unix(1774003274, 0), verifiersvc.Options{Logger: log}).svc
	inner := http.NewServeMux()
	inner.HandleFunc("POST /kbs/v0/auth", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusTeapot) })
	h := svc.AccessLog("/kbs/v0/", inner)
	for _, p := range []string{"/kbs/v0/auth", "/kbs/v0/resource/secret-name"} {
		req := httptest.NewRequestWithContext(t.Context(), "POST", p, nil)
		h.ServeHTTP(httptest.NewRecorder(), req)
	}
	out := logs.String()
	for _, want := range []string{`"route":"POST /kbs/v0/auth","status":418`, `"route":"/kbs/v0/","status":404`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, "secret-name") {
		t.Errorf("the log names the raw path:\n%s", out)
	}
}
