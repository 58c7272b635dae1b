package dstack

import (
	"bytes"
	"compress/gzip"
	"crypto/sha512"
	"crypto/x509"
	"encoding/asn1"
	"fmt"
	"io"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/quote"
)

// Object identifiers of dstack's RA-TLS certificate extensions
// (dstack.md §1.7). Each extension value is a DER OCTET STRING wrapping
// the bytes.
var (
	// OIDTDXQuote carries a raw TDX quote (legacy).
	OIDTDXQuote = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 62397, 1, 1}
	// OIDEventLog carries the event log JSON (legacy), possibly gzip
	// compressed behind the "ELGZv1" magic.
	OIDEventLog = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 62397, 1, 2}
	// OIDAppID carries the app id (issuer-backed, not attested).
	OIDAppID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 62397, 1, 3}
	// OIDCertUsage carries the special usage string, e.g. "kms:rpc"
	// (issuer-backed, not attested).
	OIDCertUsage = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 62397, 1, 4}
	// OIDAttestation carries a VersionedAttestation (current).
	OIDAttestation = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 62397, 1, 8}
	// OIDAppInfo carries app info as msgpack (issuer-backed, not
	// attested).
	OIDAppInfo = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 62397, 1, 9}
)

// EventLogGzipMagic prefixes a gzip-compressed event log extension.
const EventLogGzipMagic = "ELGZv1"

// MaxEventLogExtensionSize bounds the decompressed event log extension, as
// dstack does (16 KiB).
const MaxEventLogExtensionSize = 16 << 10

// RATLSCertificate is the dstack-specific content of an RA-TLS
// certificate. AppID, Usage and AppInfo come from the certificate's issuer
// and are not attested; trust them only after validating the certificate
// chain to the KMS CA.
type RATLSCertificate struct {
	// Certificate is the parsed certificate. Verify checks that the
	// quote's REPORTDATA is RATLSReportData of its public key.
	Certificate *x509.Certificate
	AppID       []byte
	Usage       string
	AppInfo     []byte
}

// RATLSReportData returns the report data an RA-TLS certificate with the
// given SubjectPublicKeyInfo DER must be attested with:
// SHA-512("ratls-cert:" ‖ spki).
func RATLSReportData(spki []byte) [64]byte {
	h := sha512.New()
	h.Write([]byte("ratls-cert:"))
	h.Write(spki)
	return [64]byte(h.Sum(nil))
}

// parseRATLS reads the dstack extensions of a DER certificate: the
// attestation (.1.8) if present, otherwise the legacy quote (.1.1) and
// event log (.1.2). Legacy extensions beside an attestation must carry
// the same evidence (sameLegacy).
func parseRATLS(der []byte) (*Evidence, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, malformed("certificate", -1, "%v", err)
	}
	rc := &RATLSCertificate{Certificate: cert}
	var att, rawQuote, rawLog []byte
	for _, ext := range cert.Extensions {
		var dst *[]byte
		switch {
		case ext.Id.Equal(OIDAttestation):
			dst = &att
		case ext.Id.Equal(OIDTDXQuote):
			dst = &rawQuote
		case ext.Id.Equal(OIDEventLog):
			dst = &rawLog
		case ext.Id.Equal(OIDAppID):
			dst = &rc.AppID
		case ext.Id.Equal(OIDAppInfo):
			dst = &rc.AppInfo
		case ext.Id.Equal(OIDCertUsage):
			var u []byte
			if err := unwrapOctets(ext.Id.String(), ext.Value, &u); err != nil {
				return nil, err
			}
			rc.Usage = string(u)
			continue
		default:
			continue
		}
		if err := unwrapOctets(ext.Id.String(), ext.Value, dst); err != nil {
			return nil, err
		}
	}
	var ev *Evidence
	switch {
	case att != nil:
		a, err := ParseAttestation(att)
		if err != nil {
			return nil, err
		}
		if ev, err = a.Evidence(); err != nil {
			return nil, err
		}
		if err := sameLegacy(ev, rawQuote, rawLog); err != nil {
			return nil, err
		}
	case rawQuote != nil:
		q, err := quote.Parse(rawQuote)
		if err != nil {
			return nil, wrapParse("certificate "+OIDTDXQuote.String(), err)
		}
		ev = &Evidence{Format: FormatRATLS, Quote: q}
		if rawLog != nil {
			js, err := inflateEventLog(rawLog)
			if err != nil {
				return nil, err
			}
			if ev.Events, err = eventlog.ParseJSON(js); err != nil {
				return nil, wrapParse("certificate "+OIDEventLog.String(), err)
			}
			ev.RuntimeEvents = eventlog.RuntimeEvents(ev.Events)
		}
	default:
		return nil, &ParseError{Field: "certificate", Offset: -1, Err: fmt.Errorf("%w (%s or %s)", ErrNotAttested, OIDAttestation, OIDTDXQuote)}
	}
	ev.Format = FormatRATLS
	ev.Certificate = rc
	return ev, nil
}

// sameLegacy refuses legacy extensions (.1.1, .1.2) beside an attestation
// (.1.8) unless they carry the same evidence: a certificate holds one
// evidence, and only the attestation is verified. The legacy quote must
// be the attestation's quote byte for byte; the legacy event log must
// list the attestation's events: its boot events (register, type,
// digest) then its runtime events (name, payload, version).
func sameLegacy(ev *Evidence, rawQuote, rawLog []byte) error {
	if rawQuote != nil && !bytes.Equal(rawQuote, ev.Attestation.Quote) {
		return malformed("certificate "+OIDTDXQuote.String(), -1, "a legacy quote that is not the %s attestation's quote", OIDAttestation)
	}
	if rawLog == nil {
		return nil
	}
	field := "certificate " + OIDEventLog.String()
	js, err := inflateEventLog(rawLog)
	if err != nil {
		return err
	}
	legacy, err := eventlog.ParseJSON(js)
	if err != nil {
		return wrapParse(field, err)
	}
	if !sameEvents(ev, legacy) {
		return malformed(field, -1, "a legacy event log that is not the %s attestation's", OIDAttestation)
	}
	return nil
}

// sameEvents reports whether log lists the events of ev, an attestation's
// evidence: its boot events (register, type, digest) then its runtime
// events (name, payload, version).
func sameEvents(ev *Evidence, log []eventlog.Event) bool {
	var want []eventlog.Event
	for _, e := range ev.Events {
		if !e.IsRuntime() {
			want = append(want, e)
		}
	}
	want = append(want, ev.RuntimeEvents...)
	if len(log) != len(want) {
		return false
	}
	for i := range want {
		l, w := &log[i], &want[i]
		switch {
		case l.IsRuntime() != w.IsRuntime() || l.IMR != w.IMR:
			return false
		case w.IsRuntime():
			if l.Name != w.Name || !bytes.Equal(l.Payload, w.Payload) || normVersion(l.Version) != normVersion(w.Version) {
				return false
			}
		case l.Type != w.Type || !bytes.Equal(l.Digest, w.Digest):
			return false
		}
	}
	return true
}

// unwrapOctets decodes an extension value that is a DER OCTET STRING.
func unwrapOctets(field string, v []byte, dst *[]byte) error {
	var b []byte
	rest, err := asn1.Unmarshal(v, &b)
	if err != nil || len(rest) != 0 {
		return malformed("certificate extension "+field, -1, "value is not a DER OCTET STRING")
	}
	if b == nil {
		b = []byte{}
	}
	*dst = b
	return nil
}

// inflateEventLog undoes the optional "ELGZv1" gzip wrapping, bounded by
// MaxEventLogExtensionSize.
func inflateEventLog(v []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(v, []byte(EventLogGzipMagic))
	if !ok {
		return v, nil
	}
	field := "certificate " + OIDEventLog.String()
	zr, err := gzip.NewReader(bytes.NewReader(rest))
	if err != nil {
		return nil, malformed(field, -1, "invalid gzip: %v", err)
	}
	out, err := io.ReadAll(io.LimitReader(zr, MaxEventLogExtensionSize+1))
	if err != nil {
		return nil, malformed(field, -1, "invalid gzip: %v", err)
	}
	if len(out) > MaxEventLogExtensionSize {
		return nil, malformed(field, -1, "decompressed event log exceeds %d bytes", MaxEventLogExtensionSize)
	}
	return out, nil
}
