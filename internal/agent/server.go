package agent

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/tsm"
)

// DefaultSocket is dstack's guest agent socket.
const DefaultSocket = "/var/run/dstack/dstack.sock"

// maxRequest bounds a request body.
const maxRequest = 1 << 20

// Server is the local guest agent API, compatible with dstack's
// DstackGuest service (dstack.md §6.3): POST /GetQuote, /Attest, /Info,
// /GetKey and /GetTlsKey with a JSON body (an empty body is {}), byte
// fields in lowercase hex. Failures answer {"error": "…"} with status 400
// for a bad request and 500 otherwise.
type Server struct {
	// Log is the runtime event log (RTMR3).
	Log *Log
	// Quoter quotes the TD; CCEL reads its boot event log.
	Quoter tsm.Quoter
	CCEL   tsm.EventLogReader
	// AppCompose is the app-compose.json the boot events measured.
	AppCompose []byte
	// AppKey is the app's 32-byte root key from the key provider; GetKey
	// fails without it.
	AppKey []byte
	// VMConfig is the VM configuration JSON reported as vm_config, or "".
	VMConfig string
}

// Handler returns the API's routes.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/GetQuote", serve(s.getQuote))
	mux.HandleFunc("/Attest", serve(s.attest))
	mux.HandleFunc("/Info", serve(s.info))
	mux.HandleFunc("/GetKey", serve(s.getKey))
	mux.HandleFunc("/GetTlsKey", serve(s.getTLSKey))
	return mux
}

// ListenUnix listens on a unix socket at path, replacing a stale socket,
// readable and writable by the owner only.
func ListenUnix(path string) (net.Listener, error) {
	if fi, err := os.Lstat(path); err == nil && fi.Mode()&os.ModeSocket != 0 {
		if err := os.Remove(path); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, err
	}
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		return nil, err
	}
	return ln, nil
}

// badRequest marks a client error.
type badRequest struct{ error }

func bad(format string, a ...any) error { return badRequest{fmt.Errorf(format, a...)} }

func serve[Req, Resp any](f func(context.Context, *Req) (*Resp, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		resp, err := func() (*Resp, error) {
			if r.Method != http.MethodPost && r.Method != http.MethodGet {
				return nil, bad("method %s not allowed", r.Method)
			}
			body, err := io.ReadAll(io.LimitReader(r.Body, maxRequest+1))
			if err != nil {
				return nil, bad("read request: %v", err)
			}
			if len(body) > maxRequest {
				return nil, bad("request too large")
			}
			req := new(Req)
			if len(body) != 0 {
				if err := json.Unmarshal(body, req); err != nil {
					return nil, bad("decode request: %v", err)
				}
			}
			return f(r.Context(), req)
		}()
		if err != nil {
			status := http.StatusInternalServerError
			if errors.As(err, new(badRequest)) {
				status = http.StatusBadRequest
			}
			w.WriteHeader(status)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(resp)
	}
}

// state is the TD's event log as the API reports it.
type state struct {
	boot, runtime []eventlog.Event
}

func (s *Server) state() (*state, error) {
	var st state
	if s.CCEL != nil {
		raw, err := s.CCEL.ReadCCEL()
		if err != nil {
			return nil, err
		}
		if st.boot, err = eventlog.ParseCCELEvents(raw); err != nil {
			return nil, err
		}
	}
	var err error
	if st.runtime, err = s.Log.Events(); err != nil {
		return nil, err
	}
	return &st, nil
}

func (st *state) all() []eventlog.Event {
	return append(append([]eventlog.Event(nil), st.boot...), st.runtime...)
}

func (st *state) attestation(q []byte, rd [64]byte, config string, stripBoot bool) *dstack.Attestation {
	boot := st.boot
	if stripBoot {
		boot = eventlog.Strip(boot)
	}
	a := &dstack.Attestation{
		Version: 1, Stack: dstack.StackDstack, Quote: q,
		EventLog: boot, ReportData: rd, Config: config,
	}
	for _, ev := range st.runtime {
		a.RuntimeEvents = append(a.RuntimeEvents, dstack.RuntimeEvent{Name: ev.Name, Payload: ev.Payload, Version: ev.Version})
	}
	return a
}

func reportData(h string) ([64]byte, error) {
	var rd [64]byte
	b, err := hex.DecodeString(h)
	if err != nil {
		return rd, bad("report_data: %v", err)
	}
	if len(b) > 64 {
		return rd, bad("report_data is %d bytes, at most 64", len(b))
	}
	copy(rd[:], b)
	return rd, nil
}

// ReportDataRequest is the body of GetQuote and Attest.
type ReportDataRequest struct {
	ReportData string `json:"report_data"`
}

// GetQuoteResponse is GetQuote's answer.
type GetQuoteResponse struct {
	Quote       string `json:"quote"`
	EventLog    string `json:"event_log"`
	ReportData  string `json:"report_data"`
	VMConfig    string `json:"vm_config"`
	Attestation string `json:"attestation"`
}

func (s *Server) getQuote(ctx context.Context, req *ReportDataRequest) (*GetQuoteResponse, error) {
	rd, err := reportData(req.ReportData)
	if err != nil {
		return nil, err
	}
	// Read the log before quoting: events emitted in between make RTMR3
	// run ahead of the log, never behind, and a verifier says so.
	st, err := s.state()
	if err != nil {
		return nil, err
	}
	q, err := s.Quoter.Quote(ctx, rd)
	if err != nil {
		return nil, err
	}
	return &GetQuoteResponse{
		Quote:      hex.EncodeToString(q),
		EventLog:   string(eventlog.MarshalEvents(eventlog.Strip(st.all()))),
		ReportData: hex.EncodeToString(rd[:]),
		VMConfig:   s.VMConfig,
	}, nil
}

// AttestResponse is Attest's answer.
type AttestResponse struct {
	Attestation string `json:"attestation"`
}

func (s *Server) attest(ctx context.Context, req *ReportDataRequest) (*AttestResponse, error) {
	rd, err := reportData(req.ReportData)
	if err != nil {
		return nil, err
	}
	st, err := s.state()
	if err != nil {
		return nil, err
	}
	q, err := s.Quoter.Quote(ctx, rd)
	if err != nil {
		return nil, err
	}
	b, err := st.attestation(q, rd, s.VMConfig, false).Marshal()
	if err != nil {
		return nil, err
	}
	return &AttestResponse{Attestation: hex.EncodeToString(b)}, nil
}

// InfoResponse is Info's answer. Fields tdproof cannot know without a KMS
// (app_cert, device_id, os_image_hash, cloud_*) are empty.
type InfoResponse struct {
	AppID           string `json:"app_id"`
	InstanceID      string `json:"instance_id"`
	AppCert         string `json:"app_cert"`
	TCBInfo         string `json:"tcb_info"`
	AppName         string `json:"app_name"`
	DeviceID        string `json:"device_id"`
	MRAggregated    string `json:"mr_aggregated"`
	OSImageHash     string `json:"os_image_hash"`
	KeyProviderInfo string `json:"key_provider_info"`
	ComposeHash     string `json:"compose_hash"`
	VMConfig        string `json:"vm_config"`
	CloudVendor     string `json:"cloud_vendor"`
	CloudProduct    string `json:"cloud_product"`
}

type tcbInfo struct {
	MRTD         string          `json:"mrtd"`
	RTMR0        string          `json:"rtmr0"`
	RTMR1        string          `json:"rtmr1"`
	RTMR2        string          `json:"rtmr2"`
	RTMR3        string          `json:"rtmr3"`
	MRAggregated string          `json:"mr_aggregated"`
	OSImageHash  string          `json:"os_image_hash"`
	ComposeHash  string          `json:"compose_hash"`
	DeviceID     string          `json:"device_id"`
	EventLog     json.RawMessage `json:"event_log"`
	AppCompose   string          `json:"app_compose"`
}

// Empty is a request without fields.
type Empty struct{}

func (s *Server) info(ctx context.Context, _ *Empty) (*InfoResponse, error) {
	st, err := s.state()
	if err != nil {
		return nil, err
	}
	raw, err := s.Quoter.Quote(ctx, [64]byte{})
	if err != nil {
		return nil, err
	}
	q, err := quote.Parse(raw)
	if err != nil {
		return nil, err
	}
	if q.TD == nil {
		return nil, errors.New("agent: the quoter returned no TD report")
	}
	td := q.TD
	id := dstack.ReadIdentity(st.runtime)
	agg := dstack.MRAggregated(td, td.RTMRs[3])
	var compose struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(s.AppCompose, &compose) // the name is informational
	tcb, err := json.Marshal(tcbInfo{
		MRTD:  hex.EncodeToString(td.MRTD[:]),
		RTMR0: hex.EncodeToString(td.RTMRs[0][:]), RTMR1: hex.EncodeToString(td.RTMRs[1][:]),
		RTMR2: hex.EncodeToString(td.RTMRs[2][:]), RTMR3: hex.EncodeToString(td.RTMRs[3][:]),
		MRAggregated: hex.EncodeToString(agg[:]),
		ComposeHash:  id.ComposeHash.String(),
		EventLog:     eventlog.MarshalEvents(st.all()),
		AppCompose:   string(s.AppCompose),
	})
	if err != nil {
		return nil, err
	}
	return &InfoResponse{
		AppID:           id.AppID.String(),
		InstanceID:      id.InstanceID.String(),
		TCBInfo:         string(tcb),
		AppName:         compose.Name,
		MRAggregated:    hex.EncodeToString(agg[:]),
		KeyProviderInfo: string(id.KeyProviderInfo),
		ComposeHash:     id.ComposeHash.String(),
		VMConfig:        s.VMConfig,
	}, nil
}

// GetKeyRequest is the body of GetKey.
type GetKeyRequest struct {
	Path      string `json:"path"`
	Purpose   string `json:"purpose"`
	Algorithm string `json:"algorithm"`
}

// GetKeyResponse is GetKey's answer. SignatureChain is always empty:
// tdproof has no KMS k256 key to sign the app key with.
type GetKeyResponse struct {
	Key            string   `json:"key"`
	SignatureChain []string `json:"signature_chain"`
}

// DeriveKey is dstack's derive_key (dstack.md §6.1): HKDF-SHA256 with
// salt "RATLS", input keying material ikm and info the concatenation of
// ctx, expanded to n bytes.
func DeriveKey(ikm []byte, n int, ctx ...string) ([]byte, error) {
	var info []byte
	for _, c := range ctx {
		info = append(info, c...)
	}
	return hkdf.Key(sha256.New, ikm, []byte("RATLS"), string(info), n)
}

// getKey derives the key of a path as dstack's guest agent does:
// key = HKDF-SHA256(salt "RATLS", ikm AppKey, info path), 32 bytes — the
// same bytes for every algorithm (secp256k1 scalar or ed25519 seed).
// Purpose only names the key's use in dstack's signature chain, which
// tdproof does not produce; it does not enter the derivation.
func (s *Server) getKey(_ context.Context, req *GetKeyRequest) (*GetKeyResponse, error) {
	switch req.Algorithm {
	case "", "secp256k1", "k256", "ed25519":
	default:
		return nil, bad("algorithm %q: want secp256k1, k256 or ed25519", req.Algorithm)
	}
	if len(s.AppKey) != 32 {
		return nil, errors.New("agent: no app key: the key provider gave none")
	}
	k, err := DeriveKey(s.AppKey, 32, req.Path)
	if err != nil {
		return nil, err
	}
	return &GetKeyResponse{Key: hex.EncodeToString(k), SignatureChain: []string{}}, nil
}

// GetTLSKeyRequest is the body of GetTlsKey. NotBefore and NotAfter are
// Unix seconds.
type GetTLSKeyRequest struct {
	Subject         string   `json:"subject"`
	AltNames        []string `json:"alt_names"`
	UsageRATLS      bool     `json:"usage_ra_tls"`
	UsageServerAuth bool     `json:"usage_server_auth"`
	UsageClientAuth bool     `json:"usage_client_auth"`
	NotBefore       *int64   `json:"not_before,omitempty"`
	NotAfter        *int64   `json:"not_after,omitempty"`
	WithAppInfo     bool     `json:"with_app_info"`
}

// GetTLSKeyResponse is GetTlsKey's answer.
type GetTLSKeyResponse struct {
	Key              string   `json:"key"`
	CertificateChain []string `json:"certificate_chain"`
}

// getTLSKey returns a fresh P-256 key and a certificate for it. Without a
// KMS there is no app CA: the certificate is self-signed and the chain
// holds it alone. With usage_ra_tls it carries the attestation extension
// (OID 1.3.6.1.4.1.62397.1.8, a VersionedAttestation with the stripped
// boot log) whose report data is SHA-512("ratls-cert:" ‖ SPKI DER), and
// the app id extension (.1.3).
func (s *Server) getTLSKey(ctx context.Context, req *GetTLSKeyRequest) (*GetTLSKeyResponse, error) {
	if req.WithAppInfo {
		return nil, bad("with_app_info is not supported")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: req.Subject},
		NotBefore:    now.Add(-time.Minute),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		DNSNames:     req.AltNames,
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if req.NotBefore != nil {
		tmpl.NotBefore = time.Unix(*req.NotBefore, 0)
	}
	if req.NotAfter != nil {
		tmpl.NotAfter = time.Unix(*req.NotAfter, 0)
	}
	if req.UsageServerAuth {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if req.UsageClientAuth {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	if req.UsageRATLS {
		st, err := s.state()
		if err != nil {
			return nil, err
		}
		rd := dstack.RATLSReportData(spki)
		q, err := s.Quoter.Quote(ctx, rd)
		if err != nil {
			return nil, err
		}
		att, err := st.attestation(q, rd, "", true).Marshal()
		if err != nil {
			return nil, err
		}
		id := dstack.ReadIdentity(st.runtime)
		for _, e := range []struct {
			oid asn1.ObjectIdentifier
			v   []byte
		}{{dstack.OIDAttestation, att}, {dstack.OIDAppID, id.AppID}} {
			if e.v == nil {
				continue
			}
			v, err := asn1.Marshal(e.v)
			if err != nil {
				return nil, err
			}
			tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: e.oid, Value: v})
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	return &GetTLSKeyResponse{
		Key:              string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8})),
		CertificateChain: []string{string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))},
	}, nil
}
