package pcstest

import (
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/pcs"
)

// Response is a canned response.
type Response struct {
	// Status is the HTTP status; 0 means 200.
	Status int
	// Header holds header names exactly as they are written on the wire.
	Header map[string]string
	// Body is written as is.
	Body []byte
}

// Server is a fake PCS. Its zero value is not usable; call [New]. A
// Server is safe for concurrent use.
type Server struct {
	mu       sync.Mutex
	items    map[pcs.ItemKey]Response
	pckCerts map[string]Response // by upper-case encrypted_ppid
	// pckCertsResp by upper-case encrypted_ppid "/" pceid.
	pckCertsResp map[string]Response
	fmspcs       *Response
	counts       map[string]int
	total        int
	intercept    func(w http.ResponseWriter, r *http.Request) bool
	// RootCRLAsDER makes the rootcacrl route answer DER instead of the
	// hex text PCCS serves (some mirrors do).
	rootCRLAsDER bool
}

// New returns an empty fake PCS: every route answers 404.
func New() *Server {
	return &Server{items: map[pcs.ItemKey]Response{}, pckCerts: map[string]Response{}, counts: map[string]int{}}
}

// Set makes the route for k answer r.
func (s *Server) Set(k pcs.ItemKey, r Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.items[k.Normalize()] = r
}

// Delete makes the route for k answer 404.
func (s *Server) Delete(k pcs.ItemKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.items, k.Normalize())
}

// Get returns the canned response for k.
func (s *Server) Get(k pcs.ItemKey) (Response, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.items[k.Normalize()]
	return r, ok
}

// SetRootCRLAsDER makes the rootcacrl route answer DER instead of hex
// text.
func (s *Server) SetRootCRLAsDER(v bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rootCRLAsDER = v
}

// SetPCKCert makes the pckcert route answer r for the given encrypted PPID.
func (s *Server) SetPCKCert(encryptedPPID []byte, r Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pckCerts[strings.ToUpper(hex.EncodeToString(encryptedPPID))] = r
}

// SetFMSPCs makes the fmspcs route answer the given list.
func (s *Server) SetFMSPCs(l []pcs.FMSPCEntry) {
	type entry struct {
		FMSPC    string `json:"fmspc"`
		Platform string `json:"platform"`
	}
	out := make([]entry, len(l))
	for i, e := range l {
		out[i] = entry{strings.ToUpper(hex.EncodeToString(e.FMSPC[:])), e.Platform}
	}
	b, _ := json.Marshal(out)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fmspcs = &Response{Header: map[string]string{"Content-Type": "application/json"}, Body: b}
}

// Intercept installs f, which sees every request first; when it returns
// true it has answered and the canned responses are not consulted. nil
// removes it.
func (s *Server) Intercept(f func(w http.ResponseWriter, r *http.Request) bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.intercept = f
}

// Requests returns how many requests were made for the URL path p (all
// paths if p is empty).
func (s *Server) Requests(p string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p == "" {
		return s.total
	}
	return s.counts[p]
}

// LoadDir loads a directory of PCS responses in the layout of
// pcs.ItemKey.Path (NAME.body plus NAME.headers.json, subdirectories
// early/ and eval-N/), such as the pcs/ directory of a test vector. A PCCS-style
// "rootcacrl.body" (hex text) is also read as the root CA CRL.
func (s *Server) LoadDir(dir string) error {
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, pcs.BodySuffix) {
			return err
		}
		rel, _ := filepath.Rel(dir, strings.TrimSuffix(p, pcs.BodySuffix))
		rel = filepath.ToSlash(rel)
		if rel == "rootcacrl" {
			rel = pcs.ItemKey{Kind: pcs.KindRootCACRL}.Path()
		}
		k, err := pcs.ParseItemPath(rel)
		if err != nil {
			return nil // not a collateral response
		}
		body, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if k.Kind == pcs.KindRootCACRL {
			crl, err := collateral.ParseCRL(body)
			if err != nil {
				return err
			}
			body = crl.DER
		}
		r := Response{Body: body, Header: map[string]string{}}
		hb, err := os.ReadFile(strings.TrimSuffix(p, pcs.BodySuffix) + pcs.HeadersSuffix)
		if err == nil {
			if err := json.Unmarshal(hb, &r.Header); err != nil {
				return fmt.Errorf("pcstest: %s: %w", p, err)
			}
		} else if !os.IsNotExist(err) {
			return err
		}
		s.Set(k, r)
		n++
		return nil
	})
	if err == nil && n == 0 {
		err = fmt.Errorf("pcstest: no PCS responses in %s", dir)
	}
	return err
}

// EncodeChain URL-encodes a PEM chain the way Intel PCS does in its
// issuer-chain headers (space as %20, '+' as %2B, newline as %0A).
func EncodeChain(pemText string) string {
	return strings.ReplaceAll(url.QueryEscape(pemText), "+", "%20")
}

// AddCollateral serves rc (built by dcaptest) as the collateral of k: TCB
// info and QE identity for k's TEE, channel and FMSPC, the PCK CRL of
// k's CA and the root CA CRL, with issuer-chain headers as Intel spells
// them.
func (s *Server) AddCollateral(k pcs.Key, rc *dcaptest.RawCollateral) {
	items := k.Items()
	s.Set(items[0], Response{Header: map[string]string{collateral.HeaderTCBInfoIssuerChain: EncodeChain(rc.TCBInfoIssuerChain)}, Body: rc.TCBInfoResponse()})
	s.Set(items[1], Response{Header: map[string]string{collateral.HeaderEnclaveIdentityChain: EncodeChain(rc.QEIdentityIssuerChain)}, Body: rc.QEIdentityResponse()})
	s.Set(items[2], Response{Header: map[string]string{collateral.HeaderPCKCRLIssuerChain: EncodeChain(rc.PCKCRLIssuerChain)}, Body: rc.PCKCRL})
	s.Set(items[3], Response{Body: rc.RootCACRL})
}

// SetPCKCerts serves r as the pckcerts response for an encrypted PPID and
// PCE ID.
func (s *Server) SetPCKCerts(encryptedPPID []byte, pceid [2]byte, r Response) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pckCertsResp == nil {
		s.pckCertsResp = map[string]Response{}
	}
	s.pckCertsResp[strings.ToUpper(hex.EncodeToString(encryptedPPID))+"/"+strings.ToUpper(hex.EncodeToString(pceid[:]))] = r
}

// AddPCKCert serves the PCK certificate of platform p for the given
// encrypted PPID, with Intel's headers.
func (s *Server) AddPCKCert(encryptedPPID []byte, p *dcaptest.Platform) {
	leaf := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.PCK.DER})
	ca := p.Intermediate()
	tcbm := hex.EncodeToString(p.Spec.CPUSVN[:]) + hex.EncodeToString([]byte{byte(p.Spec.PCESVN), byte(p.Spec.PCESVN >> 8)})
	caType := "PROCESSOR"
	if p.Spec.CA == pckcert.CAPlatform {
		caType = "PLATFORM"
	}
	s.SetPCKCert(encryptedPPID, Response{
		Header: map[string]string{
			collateral.HeaderPCKCertIssuerChain: EncodeChain(string(dcaptest.ChainPEM(ca.Certificate, p.PKI.Root.Certificate))),
			pcs.HeaderTCBm:                      strings.ToUpper(tcbm),
			pcs.HeaderFMSPC:                     strings.ToUpper(hex.EncodeToString(p.Spec.FMSPC[:])),
			pcs.HeaderCAType:                    caType,
			"Content-Type":                      "application/x-pem-file",
		},
		Body: leaf,
	})
}

func (s *Server) count(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[p]++
	s.total++
}

// ServeHTTP answers the PCS v4 routes.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.count(r.URL.Path)
	s.mu.Lock()
	icpt := s.intercept
	s.mu.Unlock()
	if icpt != nil && icpt(w, r) {
		return
	}
	q := r.URL.Query()
	p := r.URL.Path
	switch {
	case p == "/sgx/certification/v4/tcb" || p == "/tdx/certification/v4/tcb" ||
		p == "/sgx/certification/v4/qe/identity" || p == "/tdx/certification/v4/qe/identity":
		k := pcs.ItemKey{Kind: pcs.KindQEIdentity, TEE: pcs.TEESGX}
		if strings.HasPrefix(p, "/tdx/") {
			k.TEE = pcs.TEETDX
		}
		if strings.HasSuffix(p, "/tcb") {
			k.Kind = pcs.KindTCBInfo
			f, err := pcs.ParseFMSPC(q.Get("fmspc"))
			if err != nil {
				http.Error(w, "invalid fmspc", http.StatusBadRequest)
				return
			}
			k.FMSPC = f
		}
		if u := q.Get("update"); u != "" {
			up, err := pcs.ParseUpdate(u)
			if err != nil {
				http.Error(w, "invalid update", http.StatusBadRequest)
				return
			}
			k.Update = up
		}
		if e := q.Get("tcbEvaluationDataNumber"); e != "" {
			n, err := strconv.Atoi(e)
			if err != nil || n <= 0 {
				http.Error(w, "invalid tcbEvaluationDataNumber", http.StatusBadRequest)
				return
			}
			k.EvalNumber = n
		}
		s.serve(w, k, "application/json", nil)
	case p == "/sgx/certification/v4/qve/identity" || p == "/sgx/certification/v4/qae/identity":
		k := pcs.ItemKey{Kind: pcs.KindQvEIdentity, TEE: pcs.TEESGX}
		if strings.Contains(p, "/qae/") {
			k.Kind = pcs.KindQAEIdentity
		}
		s.serve(w, k, "application/json", nil)
	case p == "/sgx/certification/v4/pckcerts":
		s.mu.Lock()
		resp, ok := s.pckCertsResp[strings.ToUpper(q.Get("encrypted_ppid"))+"/"+strings.ToUpper(q.Get("pceid"))]
		s.mu.Unlock()
		write(w, resp, ok, "application/json", nil)
	case p == "/sgx/certification/v4/pckcrl":
		var k pcs.ItemKey
		switch strings.ToLower(q.Get("ca")) {
		case "platform":
			k = pcs.ItemKey{Kind: pcs.KindPCKCRL, CA: pckcert.CAPlatform}
		case "processor":
			k = pcs.ItemKey{Kind: pcs.KindPCKCRL, CA: pckcert.CAProcessor}
		default:
			http.Error(w, "invalid ca", http.StatusBadRequest)
			return
		}
		if strings.EqualFold(q.Get("encoding"), "der") {
			s.serve(w, k, "application/pkix-crl", nil)
			return
		}
		s.serve(w, k, "application/x-pem-file", func(b []byte) []byte {
			return pem.EncodeToMemory(&pem.Block{Type: "X509 CRL", Bytes: b})
		})
	case p == "/sgx/certification/v4/rootcacrl":
		s.mu.Lock()
		der := s.rootCRLAsDER
		s.mu.Unlock()
		if der {
			s.serve(w, pcs.ItemKey{Kind: pcs.KindRootCACRL}, "application/pkix-crl", nil)
			return
		}
		s.serve(w, pcs.ItemKey{Kind: pcs.KindRootCACRL}, "text/plain", func(b []byte) []byte {
			return []byte(hex.EncodeToString(b))
		})
	case p == "/IntelSGXRootCA.der":
		s.serve(w, pcs.ItemKey{Kind: pcs.KindRootCACRL}, "application/pkix-crl", nil)
	case p == "/sgx/certification/v4/pckcert":
		s.mu.Lock()
		resp, ok := s.pckCerts[strings.ToUpper(q.Get("encrypted_ppid"))]
		s.mu.Unlock()
		write(w, resp, ok, "application/x-pem-file", nil)
	case p == "/sgx/certification/v4/fmspcs":
		s.mu.Lock()
		resp := s.fmspcs
		s.mu.Unlock()
		if resp == nil {
			write(w, Response{}, false, "", nil)
			return
		}
		write(w, *resp, true, "application/json", nil)
	default:
		http.NotFound(w, r)
	}
}

func (s *Server) serve(w http.ResponseWriter, k pcs.ItemKey, contentType string, transform func([]byte) []byte) {
	resp, ok := s.Get(k)
	write(w, resp, ok, contentType, transform)
}

func write(w http.ResponseWriter, resp Response, ok bool, contentType string, transform func([]byte) []byte) {
	if !ok {
		http.Error(w, "no such collateral", http.StatusNotFound)
		return
	}
	h := w.Header()
	for k, v := range resp.Header {
		h[k] = []string{v} // exact spelling on the wire
	}
	if _, set := resp.Header["Content-Type"]; !set && contentType != "" {
		h.Set("Content-Type", contentType)
	}
	body := resp.Body
	if transform != nil {
		body = transform(body)
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	w.WriteHeader(status)
	w.Write(body)
}

// Transport returns an http.RoundTripper that serves requests with s in
// the calling goroutine, without sockets; header names are canonicalised
// as a network client would. A request whose context ends while the
// handler runs fails with the context's error.
func (s *Server) Transport() http.RoundTripper { return handlerTransport{s} }

// HTTPClient returns an *http.Client using [Server.Transport].
func (s *Server) HTTPClient() *http.Client { return &http.Client{Transport: s.Transport()} }

type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	if err := req.Context().Err(); err != nil {
		return nil, err
	}
	resp := rec.Result()
	canon := http.Header{}
	for k, vs := range resp.Header {
		for _, v := range vs {
			canon.Add(k, v)
		}
	}
	resp.Header, resp.Request = canon, req
	return resp, nil
}

// PCKCerts returns the pckcerts response served for an encrypted PPID and
// PCE ID.
func (s *Server) PCKCerts(encryptedPPID []byte, pceid [2]byte) (Response, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.pckCertsResp[strings.ToUpper(hex.EncodeToString(encryptedPPID))+"/"+strings.ToUpper(hex.EncodeToString(pceid[:]))]
	return r, ok
}
