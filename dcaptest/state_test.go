package dcaptest_test

import (
	"bytes"
	"errors"
	"testing"

	"github.com/tdproof/tdproof/dcaptest"
)

func TestMarshalPKIAndPlatform(t *testing.T) {
	t.Parallel()
	p := newPKI(t)
	pl, err := p.NewPlatform(dcaptest.DefaultTDXPlatformSpec())
	if err != nil {
		t.Fatal(err)
	}
	pb, err := dcaptest.MarshalPKI(p)
	if err != nil {
		t.Fatal(err)
	}
	q, err := dcaptest.UnmarshalPKI(pb)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(q.Root.DER, p.Root.DER) || !q.TCBSigning.Key.Equal(p.TCBSigning.Key) || !q.NotAfter.Equal(p.NotAfter) || !q.NotBefore.Equal(p.NotBefore) {
		t.Fatal("PKI differs after a round trip")
	}
	plb, err := dcaptest.MarshalPlatform(pl)
	if err != nil {
		t.Fatal(err)
	}
	pl2, err := dcaptest.UnmarshalPlatform(q, plb)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pl2.PCK.DER, pl.PCK.DER) || pl2.Spec.FMSPC != pl.Spec.FMSPC || *pl2.Spec.CPUSVN != *pl.Spec.CPUSVN || len(pl2.Chain) != 3 {
		t.Fatal("platform differs after a round trip")
	}
	// The loaded PKI issues new platforms and collateral under the same root.
	if _, err := q.NewPlatform(dcaptest.DefaultSGXPlatformSpec()); err != nil {
		t.Fatal(err)
	}

	other := newPKI(t)
	otherPEM, err := dcaptest.MarshalPKI(other)
	if err != nil {
		t.Fatal(err)
	}
	for name, in := range map[string][]byte{
		"empty":          nil,
		"truncated":      pb[:len(pb)/2],
		"trailing":       append(bytes.Clone(pb), "junk"...),
		"foreign format": bytes.ReplaceAll(pb, []byte(dcaptest.PKIFormat), []byte("dcaptest-pki-v9")),
		"mixed PKIs":     append(bytes.Clone(pb[:bytes.Index(pb, []byte("Role: platform-ca"))-len("-----BEGIN CERTIFICATE-----\nDcaptest-Format: dcaptest-pki-v1\n")]), otherPEM[bytes.Index(otherPEM, []byte("-----BEGIN CERTIFICATE-----\nDcaptest-Format: dcaptest-pki-v1\nRole: platform-ca")):]...),
		"root cert only": p.RootPEM(),
	} {
		if _, err := dcaptest.UnmarshalPKI(in); !errors.Is(err, dcaptest.ErrState) {
			t.Errorf("%s: %v, want ErrState", name, err)
		}
	}
	for name, in := range map[string][]byte{
		"not JSON":       plb[:10],
		"foreign format": bytes.Replace(plb, []byte(dcaptest.PlatformFormat), []byte("x"), 1),
		"changed FMSPC":  bytes.Replace(plb, []byte(`"fmspc": "90c06f000000"`), []byte(`"fmspc": "90c06f000001"`), 1),
	} {
		if _, err := dcaptest.UnmarshalPlatform(q, in); !errors.Is(err, dcaptest.ErrState) {
			t.Errorf("platform %s: %v, want ErrState", name, err)
		}
	}
	if _, err := dcaptest.UnmarshalPlatform(other, plb); !errors.Is(err, dcaptest.ErrState) {
		t.Errorf("platform of another PKI: %v, want ErrState", err)
	}
}
