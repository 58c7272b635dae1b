package pccs

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcscache"
)

// Intel PCCS answers errors with a status code and a fixed sentence as an
// HTML-typed text body (Express's res.send of a string).
type status struct {
	code int
	text string
}

var (
	statusOK             = status{http.StatusOK, "Operation successful."}
	statusInvalidRequest = status{http.StatusBadRequest, "Invalid request parameters."}
	statusUnauthorized   = status{http.StatusUnauthorized, "Authentication failed."}
	statusNoCacheData    = status{http.StatusNotFound, "No cache data for this platform."}
	statusUnavailable    = status{http.StatusServiceUnavailable, "Server is currently unable to process the request."}
)

func (st status) write(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(st.text)))
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(st.code)
	_, _ = w.Write([]byte(st.text))
}

// Headers of Intel's PCCS.
const (
	headerRequestID     = "Request-ID"
	headerPlatformCount = "platform-count"
	headerAdminToken    = "admin-token"
	headerUserToken     = "user-token"
)

func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// WithAdminToken enables GET /sgx/certification/v4/platforms for clients
// sending the token in the admin-token header, as Intel's PCCS. Without
// it that route always answers 401.
func WithAdminToken(token string) Option {
	return func(c *config) error {
		c.adminToken = token
		return nil
	}
}

// WithUserToken requires the token in the user-token header of POST
// /sgx/certification/v4/platforms, as Intel's PCCS. Without it
// registration is open (it only fills the cache, bounded).
func WithUserToken(token string) Option {
	return func(c *config) error {
		c.userToken = token
		return nil
	}
}

// tokenOK compares a presented token with the configured one in constant
// time (of SHA-256 digests); an empty configured token never matches.
func tokenOK(want, got string) bool {
	if want == "" || got == "" {
		return false
	}
	a, b := sha256.Sum256([]byte(want)), sha256.Sum256([]byte(got))
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}

// invalid answers 400 and logs why.
func (s *Server) invalid(w http.ResponseWriter, r *http.Request, err error) {
	s.cfg.log.InfoContext(r.Context(), "pccs: invalid request", "path", r.URL.Path, "err", err)
	statusInvalidRequest.write(w)
}

// CRL distribution points the crl route accepts, as Intel's PCCS: the root
// CA CRL and PCS pckcrl URLs.
var (
	rootCRLURI = regexp.MustCompile(`^https://([a-zA-Z0-9-]*certificates\.trustedservices\.intel\.com|certprx\.adsdcsp\.com)/IntelSGXRootCA\.[a-z]+$`)
	pckCRLURI  = regexp.MustCompile(`^https://([a-zA-Z0-9-]*\.?api\.trustedservices\.intel\.com|[a-zA-Z0-9-]+\.az\.sgx(prod|np)\.adsdcsp\.com)/sgx/certification/v[1-9][0-9]*/pckcrl\?.*$`)
)

// maxCRLURI bounds the uri parameter, as Intel's PCCS.
const maxCRLURI = 2048

// crl answers /crl?uri=: the DER of the root CA CRL or a PCK CRL named by
// its distribution point, from the cache.
func (s *Server) crl(w http.ResponseWriter, r *http.Request) {
	uri := r.URL.Query().Get("uri")
	if uri == "" || len(uri) > maxCRLURI {
		s.invalid(w, r, errors.New("crl: missing or too long uri"))
		return
	}
	var k pcs.ItemKey
	switch {
	case rootCRLURI.MatchString(uri):
		k = pcs.ItemKey{Kind: pcs.KindRootCACRL}
	case pckCRLURI.MatchString(uri):
		u, err := url.Parse(uri)
		if err != nil {
			s.invalid(w, r, err)
			return
		}
		k = pcs.ItemKey{Kind: pcs.KindPCKCRL}
		switch strings.ToLower(u.Query().Get("ca")) {
		case "processor":
			k.CA = pckcert.CAProcessor
		case "platform":
			k.CA = pckcert.CAPlatform
		default:
			s.invalid(w, r, fmt.Errorf("crl: uri %q names no PCK CA", uri))
			return
		}
	default:
		s.invalid(w, r, fmt.Errorf("crl: uri %q is not an Intel CRL distribution point", uri))
		return
	}
	it, err := s.cache.Fetch(r.Context(), k)
	if err != nil {
		s.fail(w, r, k.String(), err)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/pkix-crl")
	h.Set("Content-Length", strconv.Itoa(len(it.Body)))
	_, _ = w.Write(it.Body)
}

// pckCerts answers pckcerts?encrypted_ppid=&pceid= by way of the cache.
func (s *Server) pckCerts(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var req pcs.PCKCertsRequest
	ppid, err := hex.DecodeString(q.Get("encrypted_ppid"))
	if err != nil || (len(ppid) != 256 && len(ppid) != 384) {
		s.invalid(w, r, errors.New("invalid encrypted_ppid (want 512 or 768 hex digits)"))
		return
	}
	req.EncryptedPPID = ppid
	if b, err := hex.DecodeString(q.Get("pceid")); err != nil || len(b) != 2 {
		s.invalid(w, r, errors.New("invalid pceid (want 4 hex digits)"))
		return
	} else {
		copy(req.PCEID[:], b)
	}
	p, err := s.cache.PCKCerts(r.Context(), req)
	if err != nil {
		s.fail(w, r, "pck certificates", err)
		return
	}
	h := w.Header()
	for k, v := range p.Header {
		h[k] = []string{v}
	}
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(p.Body)))
	_, _ = w.Write(p.Body)
}

// registration is a platform as POST /platforms registers it (Intel's
// PLATFORM_REG_SCHEMA, upper-case hex) and GET /platforms lists it.
type registration struct {
	QEID             string `json:"qe_id"`
	PCEID            string `json:"pce_id"`
	CPUSVN           string `json:"cpu_svn"`
	PCESVN           string `json:"pce_svn"`
	EncPPID          string `json:"enc_ppid"`
	PlatformManifest string `json:"platform_manifest"`
	fmspc            string
}

// maxRegistrations bounds each list of registrations kept in memory.
const maxRegistrations = 10000

// registrations are the platforms registered since start: those whose PCK
// certificate could not be cached yet (pending: offline, or registered by
// platform manifest), those the upstream has no certificate for
// (notAvailable), and those cached, with their FMSPC.
type registrations struct {
	mu                            sync.Mutex
	pending, notAvailable, cached []registration
}

func (l *registrations) add(list *[]registration, r registration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range *list {
		if x.QEID == r.QEID && x.PCEID == r.PCEID && x.CPUSVN == r.CPUSVN && x.PCESVN == r.PCESVN && x.PlatformManifest == r.PlatformManifest {
			return
		}
	}
	if len(*list) >= maxRegistrations {
		*list = (*list)[1:]
	}
	*list = append(*list, r)
}

var hexRE = map[int]*regexp.Regexp{
	4: regexp.MustCompile(`^[a-fA-F0-9]{4}$`), 32: regexp.MustCompile(`^[a-fA-F0-9]{32}$`), 768: regexp.MustCompile(`^[a-fA-F0-9]{768}$`),
}

// parseRegistration validates a body against Intel's PLATFORM_REG_SCHEMA:
// an object with qe_id (1–260 characters) and pce_id (4 hex digits),
// optionally cpu_svn (32), pce_svn (4), enc_ppid (768 hex digits) and
// platform_manifest. Without a platform manifest, cpu_svn, pce_svn and
// enc_ppid are required.
func parseRegistration(body []byte) (registration, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return registration{}, fmt.Errorf("platforms: body is not a JSON object: %w", err)
	}
	str := func(k string) (string, error) {
		v, ok := m[k]
		if !ok || v == nil {
			return "", nil
		}
		s, ok := v.(string)
		if !ok {
			return "", fmt.Errorf("platforms: %s is not a string", k)
		}
		return s, nil
	}
	var r registration
	var err error
	for _, f := range []struct {
		key string
		dst *string
		hex int
	}{{"qe_id", &r.QEID, 0}, {"pce_id", &r.PCEID, 4}, {"cpu_svn", &r.CPUSVN, 32}, {"pce_svn", &r.PCESVN, 4}, {"enc_ppid", &r.EncPPID, 768}, {"platform_manifest", &r.PlatformManifest, 0}} {
		if *f.dst, err = str(f.key); err != nil {
			return r, err
		}
		if f.hex > 0 && *f.dst != "" && !hexRE[f.hex].MatchString(*f.dst) {
			return r, fmt.Errorf("platforms: %s is not %d hex digits", f.key, f.hex)
		}
		*f.dst = strings.ToUpper(*f.dst)
	}
	switch {
	case r.QEID == "" || len(r.QEID) > 260:
		return r, errors.New("platforms: qe_id must have 1 to 260 characters")
	case r.PCEID == "":
		return r, errors.New("platforms: pce_id is required")
	case r.PlatformManifest != "":
		r.CPUSVN, r.PCESVN, r.EncPPID = "", "", ""
	case r.CPUSVN == "" || r.PCESVN == "" || r.EncPPID == "":
		return r, errors.New("platforms: cpu_svn, pce_svn and enc_ppid are required without a platform_manifest")
	}
	return r, nil
}

func (r registration) pckCertRequest() pcs.PCKCertRequest {
	var req pcs.PCKCertRequest
	req.EncryptedPPID, _ = hex.DecodeString(r.EncPPID)
	cpusvn, _ := hex.DecodeString(r.CPUSVN)
	copy(req.CPUSVN[:], cpusvn)
	pcesvn, _ := hex.DecodeString(r.PCESVN)
	req.PCESVN = uint16(pcesvn[0]) | uint16(pcesvn[1])<<8
	pceid, _ := hex.DecodeString(r.PCEID)
	copy(req.PCEID[:], pceid)
	if qeid, err := hex.DecodeString(r.QEID); err == nil && len(qeid) == 16 {
		copy(req.QEID[:], qeid)
	}
	return req
}

// maxRegistrationBody bounds the body of POST /platforms.
const maxRegistrationBody = 64 << 10

// postPlatforms registers a platform as Intel's PCCS does: its PCK
// certificate is fetched into the cache (online), or the platform is
// queued for GET /platforms when the certificate is not cached and cannot
// be fetched (offline, or registered by platform manifest). The answer is
// 200 "Operation successful." when the platform is cached or queued.
func (s *Server) postPlatforms(w http.ResponseWriter, r *http.Request) {
	if s.cfg.userToken != "" && !tokenOK(s.cfg.userToken, r.Header.Get(headerUserToken)) {
		statusUnauthorized.write(w)
		return
	}
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(http.MaxBytesReader(w, r.Body, maxRegistrationBody)); err != nil {
		s.invalid(w, r, err)
		return
	}
	reg, err := parseRegistration(buf.Bytes())
	if err != nil {
		s.invalid(w, r, err)
		return
	}
	if reg.PlatformManifest != "" {
		// Registration by platform manifest goes through Intel's
		// pckcerts POST, which this proxy does not forward.
		s.reg.add(&s.reg.pending, reg)
		statusOK.write(w)
		return
	}
	p, err := s.cache.PCKCert(r.Context(), reg.pckCertRequest())
	switch {
	case err == nil:
		reg.fmspc = strings.ToUpper(hex.EncodeToString(p.FMSPC[:]))
		s.reg.add(&s.reg.cached, reg)
	case errors.Is(err, pcscache.ErrOffline):
		s.reg.add(&s.reg.pending, reg)
	case errors.Is(err, pcs.ErrNotFound):
		s.reg.add(&s.reg.notAvailable, reg)
		s.fail(w, r, "pck certificate", err)
		return
	default:
		s.fail(w, r, "pck certificate", err)
		return
	}
	statusOK.write(w)
}

// getPlatforms lists registrations (admin token): source absent or "reg"
// the pending ones (and forgets them, as Intel's PCCS marks them
// processed), "reg_na" those the upstream had no certificate for,
// "[FMSPC,…]" the cached platforms of those FMSPCs ("[]": all).
func (s *Server) getPlatforms(w http.ResponseWriter, r *http.Request) {
	if !tokenOK(s.cfg.adminToken, r.Header.Get(headerAdminToken)) {
		statusUnauthorized.write(w)
		return
	}
	src := r.URL.Query().Get("source")
	var out []registration
	s.reg.mu.Lock()
	switch {
	case src == "" || src == "reg":
		out, s.reg.pending = s.reg.pending, nil
	case src == "reg_na":
		out, s.reg.notAvailable = s.reg.notAvailable, nil
	case len(src) >= 2 && src[0] == '[' && src[len(src)-1] == ']':
		var want []string
		if f := strings.TrimSpace(src[1 : len(src)-1]); f != "" {
			want = strings.Split(strings.ToUpper(f), ",")
		}
		for _, x := range s.reg.cached {
			if len(want) == 0 || containsTrimmed(want, x.fmspc) {
				out = append(out, x)
			}
		}
	default:
		s.reg.mu.Unlock()
		s.invalid(w, r, fmt.Errorf("platforms: unknown source %q", src))
		return
	}
	s.reg.mu.Unlock()
	if out == nil {
		out = []registration{}
	}
	body, _ := json.Marshal(out)
	h := w.Header()
	h.Set(headerPlatformCount, strconv.Itoa(len(out)))
	h.Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(body)
}

func containsTrimmed(list []string, v string) bool {
	for _, x := range list {
		if strings.TrimSpace(x) == v {
			return true
		}
	}
	return false
}
