package cli

import (
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tdproof/tdproof/nitrosim"
)

// TestNitroVerifyCRL: with --crl-dir the chain's CRLs are fetched from
// their distribution points into the directory, then read from it
// (--crl-offline); an intermediate on its root's CRL is revoked (exit 4),
// and a CRL that cannot be had is unavailable collateral (exit 6). The
// real AWS chain names CRLs: offline without them it is refused.
func TestNitroVerifyCRL(t *testing.T) {
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ca, err := nitrosim.New(at)
	if err != nil {
		t.Fatal(err)
	}
	var revoked atomic.Bool
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		var serials []*big.Int
		if revoked.Load() {
			serials = append(serials, ca.Intermediate.SerialNumber)
		}
		der, err := ca.RootCRL(at.Add(-time.Hour), at.Add(time.Hour), serials...)
		if err != nil {
			t.Error(err)
		}
		_, _ = w.Write(der)
	}))
	defer srv.Close()
	if err := ca.SetIntermediateCRL(srv.URL + "/root.crl"); err != nil {
		t.Fatal(err)
	}
	doc, err := ca.Sign(nitrosim.Enclave(at, []byte("ud")))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file := writeFile(t, dir, "doc.cose", doc)
	root := writeFile(t, dir, "root.der", ca.Root.Raw)
	crls := t.TempDir()
	base := []string{"nitro", "verify", file, "--trusted-root", root, "--at", at.Format(time.RFC3339), "--crl-dir", crls}
	invoke(t, nil, base...).wantCode(t, exitOK, base...)
	args := append(base, "--crl-offline")
	invoke(t, nil, args...).wantCode(t, exitOK, args...)
	if hits.Load() != 1 {
		t.Fatalf("%d fetches, want 1", hits.Load())
	}
	// Revoked: a new cache directory fetches the new list.
	revoked.Store(true)
	args = []string{"nitro", "verify", file, "--trusted-root", root, "--at", at.Format(time.RFC3339), "--crl-dir", t.TempDir(), "--format", "json"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitNotAuthentic, args...)
	var out nitroOutput
	decodeJSON(t, o, &out)
	if out.Error == nil || out.Error.Code != codeRevoked {
		t.Fatalf("%+v", out.Error)
	}
	// Offline with an empty cache, and a distribution point that fails.
	args = []string{"nitro", "verify", file, "--trusted-root", root, "--at", at.Format(time.RFC3339), "--crl-dir", t.TempDir(), "--crl-offline"}
	invoke(t, nil, args...).wantCode(t, exitCollateralUnavailable, args...)
	srv.Close()
	args = []string{"nitro", "verify", file, "--trusted-root", root, "--at", at.Format(time.RFC3339), "--crl-dir", t.TempDir()}
	invoke(t, nil, args...).wantCode(t, exitCollateralUnavailable, args...)

	real := realNSM(t, "dstack-attest__tests__nitro_attestation.bin")
	args = []string{"nitro", "verify", real, "--at", "2025-12-25T16:30:00Z", "--crl-dir", t.TempDir(), "--crl-offline"}
	invoke(t, nil, args...).wantCode(t, exitCollateralUnavailable, args...)
}
