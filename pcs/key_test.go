package pcs_test

import (
	"errors"
	"testing"

	"github.com/tdproof/tdproof/pckcert"
	"github.com/tdproof/tdproof/pcs"
)

func TestItemPathRoundTrip(t *testing.T) {
	t.Parallel()
	fm := [6]byte{0x50, 0x80, 0x6F}
	want := map[string]pcs.ItemKey{
		"tdx-tcb-fmspc-50806f000000":         {Kind: pcs.KindTCBInfo, TEE: pcs.TEETDX, FMSPC: fm},
		"early/sgx-tcb-fmspc-50806f000000":   {Kind: pcs.KindTCBInfo, TEE: pcs.TEESGX, FMSPC: fm, Update: pcs.UpdateEarly},
		"eval-17/tdx-tcb-fmspc-50806f000000": {Kind: pcs.KindTCBInfo, TEE: pcs.TEETDX, FMSPC: fm, EvalNumber: 17},
		"tdx-qe-identity":                    {Kind: pcs.KindQEIdentity, TEE: pcs.TEETDX},
		"early/sgx-qe-identity":              {Kind: pcs.KindQEIdentity, TEE: pcs.TEESGX, Update: pcs.UpdateEarly},
		"eval-3/sgx-qe-identity":             {Kind: pcs.KindQEIdentity, TEE: pcs.TEESGX, EvalNumber: 3},
		"sgx-pckcrl-platform-der":            {Kind: pcs.KindPCKCRL, CA: pckcert.CAPlatform},
		"sgx-pckcrl-processor-der":           {Kind: pcs.KindPCKCRL, CA: pckcert.CAProcessor},
		"IntelSGXRootCA.der":                 {Kind: pcs.KindRootCACRL},
	}
	for p, k := range want {
		if got := k.Path(); got != p {
			t.Errorf("%v.Path() = %q, want %q", k, got, p)
		}
		got, err := pcs.ParseItemPath(p)
		if err != nil || got != k {
			t.Errorf("ParseItemPath(%q) = %v, %v; want %v", p, got, err, k)
		}
	}
	for _, bad := range []string{"", "tdx-tcb-fmspc-50806F000000", "tdx-tcb-fmspc-50806f", "abc-qe-identity", "early/IntelSGXRootCA.der",
		"eval-0/tdx-qe-identity", "eval-01/tdx-qe-identity", "late/tdx-qe-identity", "sgx-pckcrl-other-der", "a/b/tdx-qe-identity"} {
		if k, err := pcs.ParseItemPath(bad); err == nil {
			t.Errorf("ParseItemPath(%q) = %v, want an error", bad, k)
		}
	}
	// Normalize drops what a kind does not use, and the channel of a
	// pinned evaluation data number.
	k := pcs.ItemKey{Kind: pcs.KindQEIdentity, TEE: pcs.TEETDX, FMSPC: fm, CA: pckcert.CAPlatform, Update: pcs.UpdateEarly, EvalNumber: 5}
	if n := k.Normalize(); n != (pcs.ItemKey{Kind: pcs.KindQEIdentity, TEE: pcs.TEETDX, EvalNumber: 5}) {
		t.Errorf("Normalize = %+v", n)
	}
}

func TestKeyValidate(t *testing.T) {
	t.Parallel()
	good := pcs.Key{TEE: pcs.TEETDX, CA: pckcert.CAPlatform}
	if err := good.Validate(); err != nil {
		t.Errorf("Validate(%v) = %v", good, err)
	}
	for _, bad := range []pcs.Key{
		{CA: pckcert.CAPlatform},
		{TEE: pcs.TEESGX},
		{TEE: pcs.TEESGX, CA: pckcert.CAProcessor, Update: 7},
		{TEE: pcs.TEESGX, CA: pckcert.CAProcessor, EvalNumber: -1},
		{TEE: pcs.TEESGX, CA: pckcert.CAProcessor, EvalNumber: 17, Update: pcs.UpdateEarly},
	} {
		if err := bad.Validate(); !errors.Is(err, pcs.ErrInvalidKey) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidKey", bad, err)
		}
	}
}

func TestTextRoundTrip(t *testing.T) {
	t.Parallel()
	for _, tee := range []pcs.TEE{pcs.TEESGX, pcs.TEETDX} {
		b, _ := tee.MarshalText()
		var got pcs.TEE
		if err := got.UnmarshalText(b); err != nil || got != tee {
			t.Errorf("TEE %v round trip = %v, %v", tee, got, err)
		}
	}
	for _, u := range []pcs.Update{pcs.UpdateStandard, pcs.UpdateEarly} {
		b, _ := u.MarshalText()
		var got pcs.Update
		if err := got.UnmarshalText(b); err != nil || got != u {
			t.Errorf("Update %v round trip = %v, %v", u, got, err)
		}
	}
	if _, err := pcs.ParseTEE("sev"); err == nil {
		t.Error("ParseTEE(sev) succeeded")
	}
	if _, err := pcs.ParseUpdate("late"); err == nil {
		t.Error("ParseUpdate(late) succeeded")
	}
}
