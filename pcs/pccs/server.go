package pccs

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcscache"
)

// Defaults of a Server.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultShutdownTimeout   = 10 * time.Second
)

// Server is the HTTP handler and server. It is safe for concurrent use.
type Server struct {
	cache *pcscache.Cache
	cfg   config
	mux   *http.ServeMux

	registry    *prometheus.Registry
	requestsVec *prometheus.CounterVec
	reg         registrations
}

type config struct {
	log                        *slog.Logger
	readHeader, shutdown, idle time.Duration
	adminToken, userToken      string
}

// Option configures a Server.
type Option func(*config) error

// WithLogger logs one line per request (Info) and upstream failures
// (Warn). If not set, nothing is logged.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) error {
		if l == nil {
			return errors.New("pccs: nil logger")
		}
		c.log = l
		return nil
	}
}

// WithShutdownTimeout bounds the graceful shutdown of Serve. If not set,
// DefaultShutdownTimeout.
func WithShutdownTimeout(d time.Duration) Option {
	return func(c *config) error {
		if d <= 0 {
			return fmt.Errorf("pccs: shutdown timeout %v must be positive", d)
		}
		c.shutdown = d
		return nil
	}
}

// New returns a server answering from c.
func New(c *pcscache.Cache, opts ...Option) (*Server, error) {
	if c == nil {
		return nil, errors.New("pccs: nil cache")
	}
	cfg := config{log: slog.New(slog.DiscardHandler), readHeader: DefaultReadHeaderTimeout, shutdown: DefaultShutdownTimeout, idle: 2 * time.Minute}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			return nil, err
		}
	}
	s := &Server{cache: c, cfg: cfg, mux: http.NewServeMux()}
	s.registry, s.requestsVec = s.newRegistry()
	s.mux.HandleFunc("GET /{tee}/certification/v4/tcb", s.item(pcs.KindTCBInfo))
	s.mux.HandleFunc("GET /{tee}/certification/v4/qe/identity", s.item(pcs.KindQEIdentity))
	s.mux.HandleFunc("GET /sgx/certification/v4/qve/identity", s.item(pcs.KindQvEIdentity))
	s.mux.HandleFunc("GET /sgx/certification/v4/qae/identity", s.item(pcs.KindQAEIdentity))
	s.mux.HandleFunc("GET /sgx/certification/v4/crl", s.crl)
	s.mux.HandleFunc("GET /sgx/certification/v4/pckcerts", s.pckCerts)
	s.mux.HandleFunc("GET /sgx/certification/v4/platforms", s.getPlatforms)
	s.mux.HandleFunc("POST /sgx/certification/v4/platforms", s.postPlatforms)
	s.mux.HandleFunc("GET /sgx/certification/v4/pckcrl", s.item(pcs.KindPCKCRL))
	s.mux.HandleFunc("GET /sgx/certification/v4/rootcacrl", s.item(pcs.KindRootCACRL))
	s.mux.HandleFunc("GET /sgx/certification/v4/pckcert", s.pckCert)
	s.mux.HandleFunc("GET /sgx/certification/v4/fmspcs", s.fmspcs)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	s.mux.HandleFunc("GET /metrics", s.metrics)
	return s, nil
}

// ServeHTTP answers one request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	// Every PCCS response carries a Request-ID: the client's, or a new one.
	id := r.Header.Get(headerRequestID)
	if id == "" || len(id) > 128 {
		id = newRequestID()
	}
	w.Header().Set(headerRequestID, id)
	rec := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	s.mux.ServeHTTP(rec, r)
	route := routeName(r.URL.Path)
	s.countRequest(route, rec.code)
	// The access log: no query (it carries encrypted PPIDs) and no
	// headers (tokens).
	lvl := slog.LevelInfo
	if route == "healthz" || route == "metrics" {
		lvl = slog.LevelDebug
	}
	s.cfg.log.Log(r.Context(), lvl, "pccs: request", "method", r.Method, "route", route, "status", rec.code, "duration", time.Since(start), "request_id", id)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// routeName is the metrics label of a path.
func routeName(p string) string {
	switch {
	case strings.HasSuffix(p, "/certification/v4/tcb"):
		return strings.TrimPrefix(p[:4], "/") + "_tcb"
	case strings.HasSuffix(p, "/certification/v4/qe/identity"):
		return strings.TrimPrefix(p[:4], "/") + "_qe_identity"
	case p == "/sgx/certification/v4/qve/identity", p == "/sgx/certification/v4/qae/identity":
		return "sgx_" + strings.ReplaceAll(p[len("/sgx/certification/v4/"):], "/", "_")
	case p == "/sgx/certification/v4/pckcrl", p == "/sgx/certification/v4/rootcacrl", p == "/sgx/certification/v4/pckcert", p == "/sgx/certification/v4/fmspcs",
		p == "/sgx/certification/v4/pckcerts", p == "/sgx/certification/v4/crl", p == "/sgx/certification/v4/platforms":
		return p[len("/sgx/certification/v4/"):]
	case p == "/healthz", p == "/metrics":
		return p[1:]
	}
	return "other"
}

// Serve serves HTTP on ln until ctx is done, then shuts down gracefully
// (in-flight requests get WithShutdownTimeout to finish). It sets
// ReadHeaderTimeout and IdleTimeout. It returns nil after a clean
// shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           s,
		ReadHeaderTimeout: s.cfg.readHeader,
		IdleTimeout:       s.cfg.idle,
		ErrorLog:          slog.NewLogLogger(s.cfg.log.Handler(), slog.LevelWarn),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.shutdown)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}

// item answers the route of one collateral kind.
func (s *Server) item(kind pcs.Kind) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		k, err := itemKey(kind, r)
		if err != nil {
			s.invalid(w, r, err)
			return
		}
		it, err := s.cache.Fetch(r.Context(), k)
		if err != nil {
			s.fail(w, r, k.String(), err)
			return
		}
		h := w.Header()
		body := it.Body
		switch kind {
		case pcs.KindTCBInfo:
			setChain(h, collateral.HeaderTCBInfoIssuerChain, it)
			h.Set("Content-Type", "application/json")
		case pcs.KindQEIdentity, pcs.KindQvEIdentity, pcs.KindQAEIdentity:
			setChain(h, collateral.HeaderEnclaveIdentityChain, it)
			h.Set("Content-Type", "application/json")
		case pcs.KindPCKCRL:
			setChain(h, collateral.HeaderPCKCRLIssuerChain, it)
			if strings.EqualFold(r.URL.Query().Get("encoding"), "der") {
				h.Set("Content-Type", "application/pkix-crl")
			} else {
				h.Set("Content-Type", "application/x-pem-file")
				body = pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: body})
			}
		case pcs.KindRootCACRL:
			// PCCS serves the DER as hex text "to keep backward
			// compatibility".
			h.Set("Content-Type", "text/plain; charset=utf-8")
			body = []byte(hex.EncodeToString(body))
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	}
}

// setChain writes the item's issuer-chain value under name, with
// Intel's spelling on the wire.
func setChain(h http.Header, name string, it *pcs.Item) {
	for _, v := range it.Header {
		h[name] = []string{v}
		return
	}
}

// itemKey reads a collateral route's parameters.
func itemKey(kind pcs.Kind, r *http.Request) (pcs.ItemKey, error) {
	k := pcs.ItemKey{Kind: kind}
	q := r.URL.Query()
	if kind == pcs.KindTCBInfo || kind == pcs.KindQEIdentity || kind == pcs.KindQvEIdentity || kind == pcs.KindQAEIdentity {
		k.TEE = pcs.TEESGX
		if kind == pcs.KindTCBInfo || kind == pcs.KindQEIdentity {
			tee, err := pcs.ParseTEE(r.PathValue("tee"))
			if err != nil {
				return k, err
			}
			k.TEE = tee
		}
		var err error
		if kind == pcs.KindTCBInfo {
			if k.FMSPC, err = pcs.ParseFMSPC(q.Get("fmspc")); err != nil {
				return k, err
			}
		}
		if v := q.Get("update"); v != "" {
			if k.Update, err = pcs.ParseUpdate(v); err != nil {
				return k, err
			}
		}
		if v := q.Get("tcbEvaluationDataNumber"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return k, fmt.Errorf("invalid tcbEvaluationDataNumber %q", v)
			}
			k.EvalNumber = n
		}
	}
	if kind == pcs.KindPCKCRL {
		switch strings.ToLower(q.Get("ca")) {
		case "platform":
			k.CA = pckcert.CAPlatform
		case "processor":
			k.CA = pckcert.CAProcessor
		default:
			return k, fmt.Errorf("invalid ca %q (want platform or processor)", q.Get("ca"))
		}
	}
	return k, k.Validate()
}

// fail answers an error as Intel's PCCS does: 404 "No cache data for
// this platform." for collateral the upstream does not have or, offline,
// the cache lacks; 400 for bad parameters; 503 (with Retry-After)
// otherwise. The details go to the log.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	st := statusUnavailable
	switch {
	case errors.Is(err, pcs.ErrNotFound), errors.Is(err, pcscache.ErrOffline):
		st = statusNoCacheData
	case errors.Is(err, pcs.ErrInvalidKey):
		st = statusInvalidRequest
	case r.Context().Err() != nil:
		return // the client is gone
	}
	s.cfg.log.WarnContext(r.Context(), "pccs: collateral unavailable", "item", what, "code", st.code, "err", err)
	if st == statusUnavailable {
		w.Header().Set("Retry-After", "60")
	}
	st.write(w)
}

// pckCert answers pckcert by way of the cache.
func (s *Server) pckCert(w http.ResponseWriter, r *http.Request) {
	req, err := pckCertRequest(r)
	if err != nil {
		s.invalid(w, r, err)
		return
	}
	p, err := s.cache.PCKCert(r.Context(), req)
	if err != nil {
		s.fail(w, r, "pck certificate", err)
		return
	}
	h := w.Header()
	for k, v := range p.Header {
		h[k] = []string{v}
	}
	h.Set("Content-Type", "application/x-pem-file")
	w.Write(p.Body)
}

func pckCertRequest(r *http.Request) (pcs.PCKCertRequest, error) {
	q := r.URL.Query()
	var req pcs.PCKCertRequest
	fixed := func(name string, dst []byte, required bool) error {
		v := q.Get(name)
		if v == "" && !required {
			return nil
		}
		b, err := hex.DecodeString(v)
		if err != nil || len(b) != len(dst) {
			return fmt.Errorf("invalid %s (want %d hex digits)", name, 2*len(dst))
		}
		copy(dst, b)
		return nil
	}
	ppid, err := hex.DecodeString(q.Get("encrypted_ppid"))
	if err != nil || (len(ppid) != 256 && len(ppid) != 384) {
		return req, errors.New("invalid encrypted_ppid (want 512 or 768 hex digits)")
	}
	req.EncryptedPPID = ppid
	var pcesvn [2]byte
	for _, f := range []error{
		fixed("cpusvn", req.CPUSVN[:], true), fixed("pcesvn", pcesvn[:], true),
		fixed("pceid", req.PCEID[:], true), fixed("qeid", req.QEID[:], false),
	} {
		if f != nil {
			return req, f
		}
	}
	req.PCESVN = uint16(pcesvn[0]) | uint16(pcesvn[1])<<8
	return req, nil
}

// fmspcs answers the FMSPC list from the upstream.
func (s *Server) fmspcs(w http.ResponseWriter, r *http.Request) {
	l, err := s.cache.FMSPCs(r.Context())
	if err != nil {
		s.fail(w, r, "fmspc list", err)
		return
	}
	type entry struct {
		FMSPC    string `json:"fmspc"`
		Platform string `json:"platform"`
	}
	out := make([]entry, len(l))
	for i, e := range l {
		out[i] = entry{strings.ToUpper(hex.EncodeToString(e.FMSPC[:])), e.Platform}
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(out)
}
