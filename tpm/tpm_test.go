package tpm_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/tpm"
	"github.com/tdproof/tdproof/tpmsim"
)

func TestPinnedRootsMatchShared(t *testing.T) {
	testvectors.Path(t, "multitee", "roots", "gcp_ek_ak_ca_intermediate_v3.pem")
	if err := tpm.Intermediate().CheckSignatureFrom(tpm.Root()); err != nil {
		t.Fatalf("intermediate not issued by the root: %v", err)
	}
}

func TestRealQuoteSample(t *testing.T) {
	b := testvectors.ReadFile(t, "multitee", "dstack", "tpm-attest__tests__tpm_quote_sample.bin")
	a, err := tpm.ParseAttest(b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.ExtraData, []byte{0x12, 0x34, 0x56, 0x78}) || a.ResetCount != 16 || a.RestartCount != 0 || !a.Safe {
		t.Fatalf("%+v", a)
	}
	if len(a.QualifiedSigner) != 34 || a.QualifiedSigner[1] != 0x0b || len(a.PCRDigest) != 32 {
		t.Fatalf("signer %x digest %x", a.QualifiedSigner, a.PCRDigest)
	}
	if len(a.Selections) != 1 || a.Selections[0].Hash != tpm.AlgSHA256 || len(a.Selections[0].PCRs) != 3 ||
		a.Selections[0].PCRs[0] != 0 || a.Selections[0].PCRs[2] != 2 {
		t.Fatalf("selection %+v", a.Selections)
	}
	if _, err := tpm.ParseAttest(append(bytes.Clone(b), 0)); !errors.Is(err, tpm.ErrMalformed) {
		t.Fatalf("trailing byte: %v", err)
	}
	if _, err := tpm.ParseAttest(b[:len(b)-1]); !errors.Is(err, tpm.ErrMalformed) {
		t.Fatalf("truncated: %v", err)
	}
	bad := bytes.Clone(b)
	bad[0] = 0
	if _, err := tpm.ParseAttest(bad); !errors.Is(err, tpm.ErrMalformed) {
		t.Fatalf("bad magic: %v", err)
	}
}

var gcpPCR2 = []string{
	"df3f619804a92fdb4057192dc43dd748ea778adc52bc498ce80524c014b81119",
	"00b8a357e652623798d1bbd16c375ec90fbed802b4269affa3e78e6eb19386cf",
	"9ab14a46f858662a89adc102d2a57a13f52f75c1769d65a4c34edbbfc8855f0f",
	"ade943a0a7a3189a3201ba17d7df778eb380cbd33ce5e361176e974ccf7cdedb",
}

func realLog(t testing.TB) *eventlog.CCEL {
	b := testvectors.ReadFile(t, "multitee", "dstack", "cc-eventlog__samples__tpm_eventlog.bin")
	l, err := eventlog.ParseCCEL(b)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestRealEventLog(t *testing.T) {
	l := realLog(t)
	if l.SpecID.PlatformClass != 0 {
		t.Fatalf("platform class %d", l.SpecID.PlatformClass)
	}
	evs, err := tpm.LogEvents(l)
	if err != nil {
		t.Fatal(err)
	}
	var pcr2 []string
	for _, e := range evs {
		if e.PCR == 2 {
			pcr2 = append(pcr2, hex.EncodeToString(e.Digest))
		}
	}
	if len(pcr2) != 4 {
		t.Fatalf("%d PCR2 events", len(pcr2))
	}
	var want [32]byte
	for i, d := range gcpPCR2 {
		if pcr2[i] != d {
			t.Fatalf("PCR2 event %d = %s, want %s", i, pcr2[i], d)
		}
		b, _ := hex.DecodeString(d)
		want = tpm.Extend(want, b)
	}
	vals, err := tpm.ReplayLog(l)
	if err != nil {
		t.Fatal(err)
	}
	if vals[2] != want {
		t.Fatalf("PCR2 replay %x, want %x", vals[2], want)
	}
	// PCR0 replays to the GCP OVMF value dstack pins (multi-tee.md §5.2).
	if pcr0 := vals[0]; hex.EncodeToString(pcr0[:]) != "0cca9ec161b09288802e5a112255d21340ed5b797f5fe29cecccfd8f67b9f802" {
		t.Fatalf("PCR0 replay %x", pcr0)
	}
	uki, err := tpm.FindUKI(l, 2)
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(uki.Digest) != gcpPCR2[2] || uki.Candidates != 1 {
		t.Fatalf("UKI %x (%d candidates)", uki.Digest, uki.Candidates)
	}
	if _, err := tpm.FindUKI(l, 4); !errors.Is(err, tpm.ErrUKI) {
		t.Fatalf("PCR4: %v", err)
	}
	// The UKI is found by content, not index: drop the GPT event and it
	// is still found, with the same digest.
	l2 := *l
	l2.Events = nil
	for _, e := range l.Events {
		if e.Type != eventlog.EvEFIGPTEvent {
			l2.Events = append(l2.Events, e)
		}
	}
	if u, err := tpm.FindUKI(&l2, 2); err != nil || !bytes.Equal(u.Digest, uki.Digest) {
		t.Fatalf("without GPT: %v", err)
	}
}

var simAt = time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)

func simPCRs() ([]tpm.PCRValue, []tpm.Event) {
	var evs []tpm.Event
	vals := map[int][32]byte{}
	for _, p := range []int{0, 2, 14} {
		for j := 0; j < 3; j++ {
			d := sha256.Sum256([]byte{byte(p), byte(j)})
			evs = append(evs, tpm.Event{PCR: p, Digest: d[:]})
			vals[p] = tpm.Extend(vals[p], d[:])
		}
	}
	var pcrs []tpm.PCRValue
	for _, p := range []int{0, 2, 14} {
		v := vals[p]
		pcrs = append(pcrs, tpm.PCRValue{Index: p, Value: v[:]})
	}
	return pcrs, evs
}

func TestSimulatedQuote(t *testing.T) {
	for _, rsaAK := range []bool{false, true} {
		s, err := tpmsim.New(simAt, rsaAK)
		if err != nil {
			t.Fatal(err)
		}
		pcrs, evs := simPCRs()
		extra := sha256.Sum256([]byte("tdx quote"))
		q, err := s.Quote(extra[:], pcrs, evs)
		if err != nil {
			t.Fatal(err)
		}
		o := s.Options(simAt)
		o.ExtraData = extra[:]
		res, err := tpm.Verify(q, o)
		if err != nil {
			t.Fatalf("rsa=%v: %v", rsaAK, err)
		}
		if len(res.Replayed) != 3 || len(res.Chain) != 3 {
			t.Fatalf("replayed %v chain %d", res.Replayed, len(res.Chain))
		}
	}
}

// TestSimulatedNegative: one change each, one typed error each.
func TestSimulatedNegative(t *testing.T) {
	s, err := tpmsim.New(simAt, false)
	if err != nil {
		t.Fatal(err)
	}
	other, err := tpmsim.New(simAt, false)
	if err != nil {
		t.Fatal(err)
	}
	extra := sha256.Sum256([]byte("tdx quote"))
	good := func(t *testing.T) (*tpm.Quote, tpm.Options) {
		pcrs, evs := simPCRs()
		q, err := s.Quote(extra[:], pcrs, evs)
		if err != nil {
			t.Fatal(err)
		}
		o := s.Options(simAt)
		o.ExtraData = extra[:]
		return q, o
	}
	resign := func(t *testing.T, q *tpm.Quote) {
		sig, err := s.Sign(q.Message)
		if err != nil {
			t.Fatal(err)
		}
		q.Signature = sig
	}
	cases := []struct {
		name string
		mut  func(*testing.T, *tpm.Quote, *tpm.Options)
		want error
	}{
		{"signature by another AK", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) {
			q.Signature, _ = other.Sign(q.Message)
		}, tpm.ErrSignature},
		{"message changed after signing", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) { q.Message[len(q.Message)-1] ^= 1 }, tpm.ErrSignature},
		{"signature names SHA-384", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) {
			q.Signature, _ = tpmsim.SignWith(s.AK, q.Message, tpm2.TPMAlgSHA384)
		}, tpm.ErrUnsupported},
		{"signature trailing byte", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) { q.Signature = append(q.Signature, 0) }, tpm.ErrMalformed},
		{"message trailing byte", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) { q.Message = append(q.Message, 0) }, tpm.ErrMalformed},
		{"foreign root", func(t *testing.T, _ *tpm.Quote, o *tpm.Options) { o.Root = other.Root }, tpm.ErrChain},
		{"pinned Google root", func(t *testing.T, _ *tpm.Quote, o *tpm.Options) { o.Root, o.Intermediates = nil, nil }, tpm.ErrChain},
		{"no AK certificate", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) { q.AKCert = nil }, tpm.ErrChain},
		{"AK certificate expired", func(t *testing.T, _ *tpm.Quote, o *tpm.Options) { o.Time = simAt.Add(25 * time.Hour) }, tpm.ErrCertificateTime},
		{"AK EKU without 2.23.133.8.1", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) {
			c, err := s.IssueAK(simAt.Add(-time.Hour), simAt.Add(time.Hour), s.AK.Public(), []asn1.ObjectIdentifier{{1, 3, 6, 1, 5, 5, 7, 3, 1}})
			if err != nil {
				t.Fatal(err)
			}
			q.AKCert = c.Raw
		}, tpm.ErrChain},
		{"AK P-384", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) {
			k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
			c, err := s.IssueAK(simAt.Add(-time.Hour), simAt.Add(time.Hour), k.Public(), nil)
			if err != nil {
				t.Fatal(err)
			}
			q.AKCert = c.Raw
			q.Signature, _ = tpmsim.SignWith(k, q.Message, tpm2.TPMAlgSHA256)
		}, tpm.ErrUnsupported},
		{"PCR values out of order", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) {
			q.PCRs[0], q.PCRs[1] = q.PCRs[1], q.PCRs[0]
		}, tpm.ErrPCRSelection},
		{"PCR value missing", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) { q.PCRs = q.PCRs[:2] }, tpm.ErrPCRSelection},
		{"SHA-1 bank", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) {
			q.Message = tpmsim.AttestRaw(extra[:], []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA1, PCRSelect: []byte{5, 0x40, 0}}}, make([]byte, 32))
			resign(t, q)
		}, tpm.ErrPCRSelection},
		{"PCR value changed", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) { q.PCRs[1].Value[0] ^= 1 }, tpm.ErrPCRDigest},
		{"PCR value 48 bytes", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) { q.PCRs[1].Value = make([]byte, 48) }, tpm.ErrMalformed},
		{"event digest changed", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) { q.Events[4].Digest[0] ^= 1 }, tpm.ErrReplay},
		{"event dropped", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) { q.Events = q.Events[1:] }, tpm.ErrReplay},
		{"event digest of 20 bytes", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) {
			q.Events = append(q.Events, tpm.Event{PCR: 7, Digest: make([]byte, 20)})
		}, tpm.ErrMalformed},
		{"event added to a quoted PCR", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) {
			q.Events = append(q.Events, tpm.Event{PCR: 14, Digest: make([]byte, 32)})
		}, tpm.ErrReplay},
		{"extraData differs", func(t *testing.T, _ *tpm.Quote, o *tpm.Options) { o.ExtraData = make([]byte, 32) }, tpm.ErrExtraData},
		{"not a quote (certify type)", func(t *testing.T, q *tpm.Quote, _ *tpm.Options) {
			q.Message[5] = 0x17 // TPM_ST_ATTEST_CERTIFY
			resign(t, q)
		}, tpm.ErrUnsupported},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q, o := good(t)
			c.mut(t, q, &o)
			res, err := tpm.Verify(q, o)
			if !errors.Is(err, c.want) || res != nil {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestRuntimeReplay(t *testing.T) {
	evs := []eventlog.Event{{Name: "app-id", Payload: []byte{1, 2}}, {Name: "compose-hash", Payload: []byte{3}}}
	got, err := tpm.RuntimeReplay(evs)
	if err != nil {
		t.Fatal(err)
	}
	var want [32]byte
	for _, e := range evs {
		pre, _ := eventlog.RuntimePreimage(e.Name, e.Payload, 1)
		d := sha256.Sum256(pre)
		want = tpm.Extend(want, d[:])
	}
	if got != want || got == ([32]byte{}) {
		t.Fatalf("%x", got)
	}
}
