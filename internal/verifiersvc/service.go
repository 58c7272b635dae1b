package verifiersvc

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/tdproof/tdproof/jsonappend"
	"github.com/tdproof/tdproof/refvalue"
	"github.com/tdproof/tdproof/verifier"
)

// Defaults of Options.
const (
	DefaultMaxBodyBytes      = 1 << 20
	DefaultReadHeaderTimeout = 5 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 120 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second
)

// GCPercent is the garbage-collection target (GOGC) tdproof serve runs
// with unless the GOGC environment variable is set. The service's live
// heap is a few MiB, so Go's default of 100 collects every few hundred
// requests; 400 trades about 20 MiB of heap for about 30% less CPU per
// request (internal/loadtest measures with it).
const GCPercent = 400

// ProblemMediaType is the Content-Type of error responses (RFC 9457).
const ProblemMediaType = "application/problem+json"

// Options configure a Service. Zero values select the defaults.
type Options struct {
	// MaxBodyBytes limits request bodies (DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Server timeouts, used by Serve and Server.
	ReadHeaderTimeout, ReadTimeout, WriteTimeout, IdleTimeout time.Duration
	// ShutdownTimeout bounds the graceful shutdown of Serve.
	ShutdownTimeout time.Duration
	// Ready reports whether the service's dependencies (the store) are
	// reachable, for /readyz. Nil: always ready.
	Ready func() error
	// Logger receives request failures. Nil: discarded.
	Logger *slog.Logger

	// AdminToken is the bearer token of the admin API (/admin/v1/…).
	// Empty: the admin API is disabled and its routes answer 404.
	AdminToken string
	// Policies and RefValues are what the admin API manages (*store.Store
	// and its RefValues()); both are required with an AdminToken.
	Policies  PolicyStore
	RefValues refvalue.Store
	// Collateral reports the collateral cache for GET
	// /admin/v1/collateral. Nil: the report says configured: false.
	Collateral CollateralStatus
	// DstackCompatPolicy makes is_valid of POST /verify dstack-verifier's
	// own rule instead of tdproof's policy (see the package
	// documentation). The EAR token of /v1/verify is unaffected.
	DstackCompatPolicy bool

	// Keys manages the EAR signing keys for /admin/v1/keys. Nil: those
	// routes answer 501 keys_unavailable.
	Keys KeyManager
}

// Service is the verification HTTP service. It is safe for concurrent use.
type Service struct {
	v       *verifier.Verifier
	jwks    func() []byte
	opts    Options
	log     *slog.Logger
	handler http.Handler
	metrics *metrics
	// metricsHandler serves GET /metrics from metrics' registry.
	metricsHandler http.Handler
}

// New returns the service for v, publishing the JWK Set jwks returns.
func New(v *verifier.Verifier, jwks func() []byte, opts Options) (*Service, error) {
	if v == nil {
		return nil, errors.New("verifiersvc: nil verifier")
	}
	if jwks == nil {
		return nil, errors.New("verifiersvc: nil JWKS source")
	}
	if opts.AdminToken != "" && (opts.Policies == nil || opts.RefValues == nil) {
		return nil, errors.New("verifiersvc: an admin token needs Options.Policies and Options.RefValues")
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	def(&opts.ReadHeaderTimeout, DefaultReadHeaderTimeout)
	def(&opts.ReadTimeout, DefaultReadTimeout)
	def(&opts.WriteTimeout, DefaultWriteTimeout)
	def(&opts.IdleTimeout, DefaultIdleTimeout)
	def(&opts.ShutdownTimeout, DefaultShutdownTimeout)
	log := opts.Logger
	if log == nil {
		log = discardLogger()
	}
	s := &Service{v: v, jwks: jwks, opts: opts, log: log, metrics: newMetrics(opts.Collateral)}
	s.metricsHandler = newMetricsHandler(s.metrics)
	mux := http.NewServeMux()
	s.register(mux)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeProblem(w, http.StatusNotFound, "not_found", "no such route: "+r.URL.Path, nil)
	})
	s.handler = s.accessLog("unmatched", s.recoverer(mux))
	return s, nil
}

// ServeHTTP implements http.Handler.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// Server returns an http.Server for the service with the configured
// timeouts.
func (s *Service) Server() *http.Server {
	return &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.opts.ReadHeaderTimeout,
		ReadTimeout:       s.opts.ReadTimeout,
		WriteTimeout:      s.opts.WriteTimeout,
		IdleTimeout:       s.opts.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// Serve serves on ln until ctx is done, then shuts down gracefully (in-flight
// requests get ShutdownTimeout to finish). It returns nil after a shutdown
// caused by ctx.
func (s *Service) Serve(ctx context.Context, ln net.Listener) error {
	srv := s.Server()
	srv.BaseContext = func(net.Listener) context.Context { return context.WithoutCancel(ctx) }
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), s.opts.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("verifiersvc: shutdown: %w", err)
	}
	return nil
}

// recoverer turns a panic into a 500 problem (unless the response has
// started) and logs it.
func (s *Service) recoverer(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rw, ok := w.(*trackingWriter)
		if !ok {
			rw = &trackingWriter{ResponseWriter: w}
		}
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("verifiersvc: panic", "path", r.URL.Path, "panic", fmt.Sprint(p))
			if !rw.wrote {
				writeProblem(rw, http.StatusInternalServerError, "internal", "internal error", nil)
			}
		}()
		h.ServeHTTP(rw, r)
	})
}

// trackingWriter records whether the response started, its status code
// and the request's outcome (an EAR status or an error code, set by the
// verification handlers) for the access log.
type trackingWriter struct {
	http.ResponseWriter
	wrote   bool
	code    int
	outcome string
}

func (t *trackingWriter) WriteHeader(code int) {
	if !t.wrote {
		t.code = code
	}
	t.wrote = true
	t.ResponseWriter.WriteHeader(code)
}

func (t *trackingWriter) Write(b []byte) (int, error) {
	if !t.wrote {
		t.code = http.StatusOK
	}
	t.wrote = true
	return t.ResponseWriter.Write(b)
}

// AccessLog wraps h, a handler served next to the service on the same
// listener (the key broker), with the service's access log and request
// histogram; route names its requests when h records no route pattern.
func (s *Service) AccessLog(route string, h http.Handler) http.Handler {
	return s.accessLog(route, h)
}

// observe counts a verification and records its outcome for the access
// log.
func (s *Service) observe(w http.ResponseWriter, route, outcome string, d time.Duration) {
	s.metrics.observe(route, outcome, d)
	if tw, ok := w.(*trackingWriter); ok {
		tw.outcome = outcome
	}
}

// accessLog logs one structured line per request (log/slog): method,
// route pattern (never the raw path or query), status code, duration,
// bytes and the verification outcome when there is one. Headers and
// bodies, which carry tokens and evidence, are never logged. Probes
// (/healthz, /health, /readyz, /metrics) log at Debug, everything else at
// Info. Each request is also observed in tdproof_http_request_duration_seconds.
//
// fallback is the route of requests whose handler records no pattern.
func (s *Service) accessLog(fallback string, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		tw := &trackingWriter{ResponseWriter: w}
		// The mux records the matched pattern on the request it is given.
		r2 := r.WithContext(r.Context())
		defer func() {
			d := time.Since(start)
			code := tw.code
			if !tw.wrote {
				code = http.StatusOK
			}
			route := r2.Pattern
			if route == "" || route == "/" {
				route = fallback
			}
			s.metrics.observeRequest(route, r.Method, code, d)
			lvl := slog.LevelInfo
			switch route {
			case "/healthz", "/health", "/readyz", "/metrics":
				lvl = slog.LevelDebug
			}
			attrs := []slog.Attr{
				slog.String("method", r.Method), slog.String("route", route), slog.Int("status", code),
				slog.Duration("duration", d),
			}
			if tw.outcome != "" {
				attrs = append(attrs, slog.String("outcome", tw.outcome))
			}
			s.log.LogAttrs(r.Context(), lvl, "http request", attrs...)
		}()
		h.ServeHTTP(tw, r2)
	})
}

func (t *trackingWriter) Unwrap() http.ResponseWriter { return t.ResponseWriter }

// problem is an RFC 9457 problem document with tdproof's stable code.
type problem struct {
	Type   string `json:"type"`
	Title  string `json:"title"`
	Status int    `json:"status"`
	Detail string `json:"detail,omitempty"`
	Code   string `json:"code"`
}

// writeProblem writes a problem document; ext adds extension members.
func writeProblem(w http.ResponseWriter, status int, code, detail string, ext map[string]any) {
	p := problem{Type: "about:blank", Title: http.StatusText(status), Status: status, Detail: detail, Code: code}
	var body []byte
	if len(ext) == 0 {
		body, _ = json.Marshal(p)
	} else {
		m := map[string]any{"type": p.Type, "title": p.Title, "status": p.Status, "code": p.Code}
		if detail != "" {
			m["detail"] = detail
		}
		for k, v := range ext {
			m[k] = v
		}
		body, _ = json.Marshal(m)
	}
	w.Header().Set("Content-Type", ProblemMediaType)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func writeJSON(w http.ResponseWriter, contentType string, v any) {
	buf := getBuffer()
	defer putBuffer(buf)
	// Encode writes the bytes of json.Marshal and a newline.
	if err := json.NewEncoder(buf).Encode(v); err != nil {
		writeProblem(w, http.StatusInternalServerError, "internal", "encode response", nil)
		return
	}
	writeBody(w, contentType, buf)
}

// writeNative writes the NativeResponse of o with the bytes
// json.NewEncoder would write, encoding the claims once: the result's
// encoding reuses the one made for the token (verifier.Result.AppendJSON).
func writeNative(w http.ResponseWriter, o *verifier.Outcome) {
	buf := getBuffer()
	defer putBuffer(buf)
	b := append(buf.AvailableBuffer(), nativePrefix...)
	b, err := o.Result.AppendJSON(b)
	if err != nil {
		writeProblem(w, http.StatusInternalServerError, "internal", "encode response", nil)
		return
	}
	b = append(b, `,"token":`...)
	b = jsonappend.String(b, o.Token)
	b = append(b, "}\n"...)
	buf.Write(b)
	writeBody(w, verifier.MediaType, buf)
}

// nativePrefix opens a NativeResponse up to its result.
var nativePrefix = func() string {
	mt, err := json.Marshal(verifier.MediaType)
	if err != nil {
		panic(err)
	}
	return `{"media_type":` + string(mt) + `,"result":`
}()

// writeBody writes a 200 response with buf as its body.
func writeBody(w http.ResponseWriter, contentType string, buf *bytes.Buffer) {
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(buf.Bytes())
}

// bufferPool holds the buffers of request and response bodies.
var bufferPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledBuffer is the largest buffer returned to bufferPool, so that a
// rare large body does not stay allocated.
const maxPooledBuffer = 256 << 10

func getBuffer() *bytes.Buffer { return bufferPool.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledBuffer {
		return
	}
	b.Reset()
	bufferPool.Put(b)
}

// apiError is a failure mapped to a problem.
type apiError struct {
	status int
	code   string
	detail string
}

func (e *apiError) Error() string { return e.detail }

func badRequest(code, format string, a ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: code, detail: fmt.Sprintf(format, a...)}
}

// readJSON reads the body (within the limit) and decodes it into v.
func (s *Service) readJSON(w http.ResponseWriter, r *http.Request, v any, strict bool) ([]byte, *apiError) {
	buf := getBuffer()
	defer putBuffer(buf)
	if aerr := s.decodeJSON(w, r, buf, v, strict); aerr != nil {
		return nil, aerr
	}
	return bytes.Clone(buf.Bytes()), nil
}

// decodeJSON is readJSON reading into buf, for callers that do not keep
// the body. v must not retain buf's bytes (encoding/json copies strings
// and json.RawMessage).
func (s *Service) decodeJSON(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer, v any, strict bool) *apiError {
	if aerr := s.readBody(w, r, buf); aerr != nil {
		return aerr
	}
	return decodeBody(buf.Bytes(), v, strict)
}

// decodeBody decodes a request body read by readBody into v.
func decodeBody(b []byte, v any, strict bool) *apiError {
	if fd, ok := v.(interface{ decodeFast([]byte) bool }); ok && strict && fd.decodeFast(b) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	if strict {
		dec.DisallowUnknownFields()
	}
	if err := dec.Decode(v); err != nil {
		return badRequest("malformed_request", "request body: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return badRequest("malformed_request", "request body: data after the JSON object")
	}
	return nil
}

// readBody reads the request body into buf, within Options.MaxBodyBytes.
func (s *Service) readBody(w http.ResponseWriter, r *http.Request, buf *bytes.Buffer) *apiError {
	// Trust the announced length only as far as a typical body, so that a
	// client cannot reserve the whole limit without sending it.
	if n := min(r.ContentLength, s.opts.MaxBodyBytes, 64<<10); n > 0 {
		buf.Grow(int(n) + bytes.MinRead)
	}
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, s.opts.MaxBodyBytes)); err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return &apiError{status: http.StatusRequestEntityTooLarge, code: "body_too_large",
				detail: fmt.Sprintf("request body larger than %d bytes", mbe.Limit)}
		}
		return &apiError{status: http.StatusRequestTimeout, code: "request_timeout", detail: "reading the request body: " + err.Error()}
	}
	return nil
}

// verifyError maps an error of verifier.Verify.
func verifyError(ctx context.Context, err error) *apiError {
	switch {
	case errors.Is(err, verifier.ErrMalformedEvidence):
		return badRequest("malformed_evidence", "%v", err)
	case errors.Is(err, verifier.ErrUnknownPolicy):
		return &apiError{status: http.StatusNotFound, code: "unknown_policy", detail: err.Error()}
	case errors.Is(err, verifier.ErrCollateralUnavailable):
		return &apiError{status: http.StatusServiceUnavailable, code: "collateral_unavailable", detail: err.Error()}
	case ctx.Err() != nil:
		return &apiError{status: http.StatusRequestTimeout, code: "request_timeout", detail: "request canceled: " + err.Error()}
	}
	return &apiError{status: http.StatusInternalServerError, code: "internal", detail: err.Error()}
}

// decodeBytes decodes hex (optionally 0x-prefixed) or base64 (standard or
// URL alphabet, padded or not).
func decodeBytes(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	h := strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if b, err := hex.DecodeString(h); err == nil {
		return b, nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("neither hex nor base64")
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
