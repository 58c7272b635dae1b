package verifier

import (
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/snp"
)

// Roles of a ChainCert.
const (
	RolePCK    = "pck"     // the PCK certificate (the platform's key)
	RolePCKCA  = "pck_ca"  // the Intel PCK Platform or Processor CA
	RoleRootCA = "root_ca" // the trusted root (Intel SGX Root CA)
	// SEV-SNP: the VCEK (or VLEK) that signed the report, the ASK (or
	// ASVK) that issued it, and the product's ARK.
	RoleVCEK = "vcek"
	RoleVLEK = "vlek"
	RoleASK  = "ask"
	RoleASVK = "asvk"
	RoleARK  = "ark"
)

// CRLAMDARK names the CRL of an SEV-SNP chain (ChainCert.CRL): the
// product's ARK-signed CRL from AMD KDS ({product}/crl) or a bundle.
const CRLAMDARK = "amd_ark_crl"

// Revocation states of a ChainCert.
const (
	// NotRevoked: the certificate is not on the CRL named by ChainCert.CRL
	// (which DCAP verification checked).
	NotRevoked = "not_revoked"
	// TrustAnchor: the pinned root; no CRL applies.
	TrustAnchor = "trust_anchor"
	// NotChecked: no current CRL was applied (SEV-SNP without an AMD CRL;
	// ChainCert.RevocationNote says why). The default policy refuses such
	// evidence (rule crl_checked).
	NotChecked = "not_checked"
)

// ChainCert describes one certificate of the verified PCK chain (Result
// Chain, with Evidence.Details), for reports. The chain was verified by
// DCAP; these are its facts, not a second verification.
type ChainCert struct {
	// Role is RolePCK, RolePCKCA or RoleRootCA.
	Role      string    `json:"role"`
	Subject   string    `json:"subject"`
	Issuer    string    `json:"issuer"`
	Serial    string    `json:"serial"`
	NotBefore time.Time `json:"not_before"`
	NotAfter  time.Time `json:"not_after"`
	// SHA256 is the SHA-256 of the DER certificate, hex.
	SHA256 string `json:"sha256"`
	// Revocation is NotRevoked, NotChecked or TrustAnchor.
	Revocation string `json:"revocation"`
	// RevocationNote says why a certificate is NotChecked.
	RevocationNote string `json:"revocation_note,omitempty"`
	// CRL names the CRL the certificate was checked against ("pck_crl",
	// "root_ca_crl", CRLAMDARK; "" for the trust anchor) and CRLNumber
	// its number.
	CRL       string `json:"crl,omitempty"`
	CRLNumber string `json:"crl_number,omitempty"`
	// CRLThisUpdate and CRLNextUpdate bound the CRL applied (SEV-SNP).
	CRLThisUpdate *time.Time `json:"crl_this_update,omitempty"`
	CRLNextUpdate *time.Time `json:"crl_next_update,omitempty"`
	// CRLSHA256 is the SHA-256 of the DER CRL applied (SEV-SNP), hex.
	CRLSHA256 string `json:"crl_sha256,omitempty"`
	// TCB is the TCB an SEV-SNP VCEK or VLEK was issued for (its SPL
	// extensions, equal to the report's REPORTED_TCB), per component.
	TCB *snp.TCBParts `json:"tcb,omitempty"`
}

// LogEvent is one event of the event log the evidence carries (Result
// EventLog, with Evidence.Details), for reports: boot events (RTMR0–2, and
// any other non-runtime event) in log order, then the runtime events
// replayed into RTMR3 in order.
type LogEvent struct {
	// IMR is the RTMR index 0–3.
	IMR uint32 `json:"imr"`
	// Type is the event type's name (EV_EFI_…, or DSTACK_RUNTIME).
	Type string `json:"event_type"`
	// Name is the event name (runtime events, named ACPI events).
	Name string `json:"event,omitempty"`
	// Digest is the SHA-384 digest extended (for runtime events the one
	// recomputed from name and payload), hex; "" when the log carries none.
	Digest string `json:"digest,omitempty"`
	// Description is a short human-readable summary of the event.
	Description string `json:"description"`
	// Runtime is true for runtime (RTMR3) events.
	Runtime bool `json:"runtime,omitempty"`
	// SystemReady is true for the first runtime event named
	// "system-ready": the cut-off after which events are not used for the
	// app's identity.
	SystemReady bool `json:"system_ready,omitempty"`
	// AfterSystemReady is true for runtime events after that cut-off.
	AfterSystemReady bool `json:"after_system_ready,omitempty"`
}

// chainDetails describes the PCK chain DCAP verified for q (from the
// quote, or the collateral for certification data types 2 and 3). It
// returns nil when no chain can be read, which verification would have
// refused already.
func chainDetails(q *quote.Quote, col *collateral.Collateral, r *dcap.Result) []ChainCert {
	text := q.Signature.Certification.PCKChain
	if len(text) == 0 && col != nil && col.PCKCertChain != nil {
		text = []byte(col.PCKCertChain.PEM)
	}
	var out []ChainCert
	rest := text
	for i := 0; i < 3; i++ {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil
		}
		sum := sha256.Sum256(c.Raw)
		cc := ChainCert{
			Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: hex.EncodeToString(c.SerialNumber.Bytes()),
			NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), SHA256: hex.EncodeToString(sum[:]),
		}
		switch i {
		case 0:
			cc.Role, cc.Revocation, cc.CRL = RolePCK, NotRevoked, "pck_crl"
			if r != nil {
				cc.CRLNumber = r.Collateral.PCKCRL.Number
			}
		case 1:
			cc.Role, cc.Revocation, cc.CRL = RolePCKCA, NotRevoked, "root_ca_crl"
			if r != nil {
				cc.CRLNumber = r.Collateral.RootCACRL.Number
			}
		default:
			cc.Role, cc.Revocation = RoleRootCA, TrustAnchor
		}
		out = append(out, cc)
	}
	return out
}

// logDetails describes the event log: boot events from events (the CCEL
// or dstack's log; runtime events in it are skipped), then runtime.
func logDetails(events, runtime []eventlog.Event) []LogEvent {
	var out []LogEvent
	for i := range events {
		e := &events[i]
		if e.IsRuntime() {
			continue
		}
		out = append(out, LogEvent{IMR: e.IMR, Type: e.Type.String(), Name: e.Name, Digest: hex.EncodeToString(e.Digest), Description: e.Describe()})
	}
	ready := false
	for i := range runtime {
		e := &runtime[i]
		le := LogEvent{IMR: e.IMR, Type: e.Type.String(), Name: e.Name, Description: e.Describe(), Runtime: true}
		if d, err := e.ReplayDigest(); err == nil {
			le.Digest = hex.EncodeToString(d[:])
		}
		switch {
		case ready:
			le.AfterSystemReady = true
		case e.Name == dstack.EventSystemReady:
			le.SystemReady, ready = true, true
		}
		out = append(out, le)
	}
	return out
}

// snpChainDetails describes the verified SEV-SNP chain of r, leaf first:
// the VCEK (VLEK) with the TCB it was issued for, the ASK (ASVK) and the
// ARK, each with the CRL applied (thisUpdate, nextUpdate, number) or,
// when none was, why (crlErr: obtaining the CRLs failed).
func snpChainDetails(r *snp.Result, crlErr error) []ChainCert {
	if r == nil || r.VCEK == nil || r.ASK == nil || r.ARK == nil {
		return nil
	}
	leaf, ca := RoleVCEK, RoleASK
	if r.SigningKey == snp.SigningKeyVLEK {
		leaf, ca = RoleVLEK, RoleASVK
	}
	var out []ChainCert
	for i, c := range []*x509.Certificate{r.VCEK, r.ASK, r.ARK} {
		sum := sha256.Sum256(c.Raw)
		cc := ChainCert{
			Subject: c.Subject.String(), Issuer: c.Issuer.String(), Serial: hex.EncodeToString(c.SerialNumber.Bytes()),
			NotBefore: c.NotBefore.UTC(), NotAfter: c.NotAfter.UTC(), SHA256: hex.EncodeToString(sum[:]),
		}
		switch i {
		case 0:
			cc.Role = leaf
			if r.Extensions != nil {
				t := r.Extensions.TCB(r.Product).Parts(r.Product)
				cc.TCB = &t
			}
		case 1:
			cc.Role = ca
		default:
			cc.Role, cc.Revocation = RoleARK, TrustAnchor
			out = append(out, cc)
			continue
		}
		switch {
		case r.CRLChecked && r.CRL != nil:
			this, next := r.CRL.ThisUpdate, r.CRL.NextUpdate
			cc.Revocation, cc.CRL, cc.CRLNumber, cc.CRLSHA256, cc.CRLThisUpdate = NotRevoked, CRLAMDARK, r.CRL.Number, r.CRL.SHA256, &this
			if !next.IsZero() {
				cc.CRLNextUpdate = &next
			}
		case crlErr != nil:
			cc.Revocation, cc.RevocationNote = NotChecked, "no AMD CRL obtained: "+crlErr.Error()
		default:
			cc.Revocation, cc.RevocationNote = NotChecked, "no CRL of ARK-"+r.Product.String()+" among those obtained"
		}
		out = append(out, cc)
	}
	return out
}
