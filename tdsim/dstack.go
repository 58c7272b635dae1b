package tdsim

import (
	"context"
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/kbs/protocol"
)

// DstackParts are the parts of one piece of dstack evidence, kept apart so
// that tests can build every form from them, and combine parts of
// different TDs (package internal/attacktest). The encoders below write
// the parts as given and check nothing: the result may well be evidence
// no verifier accepts.
type DstackParts struct {
	// Quote is the raw TDX quote.
	Quote []byte
	// EventLog is the event log as carried: boot events then runtime
	// events (dstack's GetQuote event_log, the attestation's platform
	// event log). Nil: omitted.
	EventLog []eventlog.Event
	// RuntimeEvents are the attestation stack's runtime events (the
	// events replayed into RTMR3); GetQuote JSON does not carry them
	// apart from EventLog.
	RuntimeEvents []eventlog.Event
	// ReportData is the report data claimed beside the quote; nil omits
	// it (GetQuote) or writes zeros (an attestation always carries it).
	ReportData *[64]byte
	// VMConfig is the vm_config JSON text; "" omits it.
	VMConfig string
}

// Dstack returns the TD's dstack evidence parts: a fresh quote over
// reportData, its event log (boot events then the runtime events recorded
// by [Sim.Extend]), the runtime events, reportData and vmConfig.
func (s *Sim) Dstack(ctx context.Context, reportData [64]byte, vmConfig string) (DstackParts, error) {
	q, err := s.Quote(ctx, reportData)
	if err != nil {
		return DstackParts{}, err
	}
	rd := reportData
	return DstackParts{Quote: q, EventLog: s.EventLog(), RuntimeEvents: s.RuntimeEvents(), ReportData: &rd, VMConfig: vmConfig}, nil
}

// GetQuoteJSON encodes p as the JSON of dstack's guest-agent GetQuote
// response (and dstack-verifier's request): "quote" (hex), "event_log"
// (a JSON string holding the event array, omitted when EventLog is nil),
// "report_data" (hex, omitted when nil) and "vm_config" (omitted when
// empty).
func (p DstackParts) GetQuoteJSON() ([]byte, error) {
	doc := map[string]string{"quote": hex.EncodeToString(p.Quote)}
	if p.EventLog != nil {
		doc["event_log"] = string(eventlog.MarshalEvents(p.EventLog))
	}
	if p.ReportData != nil {
		doc["report_data"] = hex.EncodeToString(p.ReportData[:])
	}
	if p.VMConfig != "" {
		doc["vm_config"] = p.VMConfig
	}
	return json.Marshal(doc)
}

// Attestation encodes p as a dstack VersionedAttestation of version 0
// (SCALE) or 1 (msgpack, stack "dstack") with [dstack.Attestation.Marshal].
// Version 0 cannot carry runtime event versions: use a Sim whose
// RuntimeEventVersion is 0 or 1.
func (p DstackParts) Attestation(version int) ([]byte, error) {
	a := dstack.Attestation{Version: version, Quote: p.Quote, EventLog: p.EventLog, Config: p.VMConfig}
	if version == 1 {
		a.Stack = dstack.StackDstack
	}
	if p.ReportData != nil {
		a.ReportData = *p.ReportData
	}
	for _, e := range p.RuntimeEvents {
		a.RuntimeEvents = append(a.RuntimeEvents, dstack.RuntimeEvent{Name: e.Name, Payload: e.Payload, Version: e.Version})
	}
	if version == 0 {
		// Version 0 events carry no version, digest version or preimage.
		log := make([]eventlog.Event, len(a.EventLog))
		for i, e := range a.EventLog {
			e.Version, e.Preimage = 0, nil
			log[i] = e
		}
		a.EventLog = log
		for i := range a.RuntimeEvents {
			a.RuntimeEvents[i].Version = 0
		}
	}
	return a.Marshal()
}

// RATLSExtensions are the dstack extensions of an RA-TLS certificate;
// nil members are left out. Each is written as a DER OCTET STRING.
type RATLSExtensions struct {
	// Attestation is a VersionedAttestation (OID .1.8).
	Attestation []byte
	// Quote is a raw quote (legacy OID .1.1).
	Quote []byte
	// EventLog is an event log JSON (legacy OID .1.2).
	EventLog []byte
}

// RATLSCertificate issues a self-signed RA-TLS certificate (DER) for key
// with the given extensions. A verifier accepts it only when the quote's
// REPORTDATA is [dstack.RATLSReportData] of the certificate's public key.
// It has dstack's RA-TLS profile ([dstack.CheckCertificateProfile]):
// valid from an hour ago for a day, KeyUsage digitalSignature, EKU
// serverAuth and clientAuth, and the names localhost and 127.0.0.1, so
// that a local TLS server can present it.
func RATLSCertificate(key crypto.Signer, ext RATLSExtensions) ([]byte, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return nil, fmt.Errorf("tdsim: %w", err)
	}
	now := time.Now().UTC()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: "tdsim dstack app"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	for _, e := range []struct {
		oid asn1.ObjectIdentifier
		v   []byte
	}{{dstack.OIDAttestation, ext.Attestation}, {dstack.OIDTDXQuote, ext.Quote}, {dstack.OIDEventLog, ext.EventLog}} {
		if e.v == nil {
			continue
		}
		v, err := asn1.Marshal(e.v)
		if err != nil {
			return nil, fmt.Errorf("tdsim: %w", err)
		}
		tmpl.ExtraExtensions = append(tmpl.ExtraExtensions, pkix.Extension{Id: e.oid, Value: v})
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tdsim: RA-TLS certificate: %w", err)
	}
	return der, nil
}

// RATLSReportData returns the REPORTDATA an RA-TLS certificate for key
// must be attested with ([dstack.RATLSReportData] of its
// SubjectPublicKeyInfo).
func RATLSReportData(key crypto.PublicKey) ([64]byte, error) {
	spki, err := x509.MarshalPKIXPublicKey(key)
	if err != nil {
		return [64]byte{}, fmt.Errorf("tdsim: %w", err)
	}
	return dstack.RATLSReportData(spki), nil
}

// KBSEvidence encodes the primary evidence of a Trustee KBS attestation
// for a TD (protocol.TDXEvidence): the quote, the CCEL (nil: JSON null)
// and tdproof's extension members event_log (nil: omitted) and
// vm_config ("" omitted).
func KBSEvidence(quote, ccel []byte, eventLog []eventlog.Event, vmConfig string) ([]byte, error) {
	if len(quote) == 0 {
		return nil, errors.New("tdsim: KBS evidence without a quote")
	}
	ev := protocol.TDXEvidence{Quote: base64.StdEncoding.EncodeToString(quote), VMConfig: vmConfig}
	if ccel != nil {
		s := base64.StdEncoding.EncodeToString(ccel)
		ev.CCEventLog = &s
	}
	if eventLog != nil {
		ev.EventLog = string(eventlog.MarshalEvents(eventLog))
	}
	return json.Marshal(ev)
}
