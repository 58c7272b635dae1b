package dcap_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/quote"
)

// realVector is one entry of the table in ../shared/testdata/README.md.
type realVector struct {
	dir        string
	at         int64
	wantStatus collateral.TCBStatus
	wantErr    error
	advisories []string
	module     string
}

var realVectors = []realVector{
	{dir: "tdx-v4-b0c06f", at: 1752919234, wantStatus: collateral.UpToDate, advisories: []string{}, module: "TDX_01"},
	{dir: "sgx-v3-00a067", at: 1752919277, wantStatus: collateral.ConfigurationAndSWHardeningNeeded, advisories: []string{"INTEL-SA-00289", "INTEL-SA-00615"}},
	{dir: "tdx-v5-90c06f", at: 1774003274, wantErr: dcap.ErrTCBNotSupported},
	{dir: "tdx-v4-90c06f-dstack", at: 1774003274, wantStatus: collateral.UpToDate, advisories: []string{}},
	{dir: "tdx-v4-50806f-pcs", at: 1688173200, wantErr: dcap.ErrTCBNotSupported},
}

// loadVector reads a vector's quote and collateral (collateral.json or pcs/).
func loadVector(t testing.TB, dir string) (*quote.Quote, *collateral.Collateral) {
	t.Helper()
	base := testvectors.Path(t, "dcap", dir)
	raw, err := os.ReadFile(filepath.Join(base, "quote.bin"))
	if err != nil {
		t.Fatal(err)
	}
	q, err := quote.Parse(raw)
	if err != nil {
		t.Fatalf("parse %s: %v", dir, err)
	}
	var c *collateral.Collateral
	if js, err := os.ReadFile(filepath.Join(base, "collateral.json")); err == nil {
		c, err = collateral.ParseQVLJSON(js)
		if err != nil {
			t.Fatal(err)
		}
	} else {
		tee := "sgx"
		if q.IsTDX() {
			tee = "tdx"
		}
		c, err = collateral.ReadPCSDir(os.DirFS(filepath.Join(base, "pcs")), collateral.PCSSelector{TEE: tee})
		if err != nil {
			t.Fatal(err)
		}
	}
	return q, c
}

func TestRealVectors(t *testing.T) {
	for _, v := range realVectors {
		t.Run(v.dir, func(t *testing.T) {
			q, c := loadVector(t, v.dir)
			at := time.Unix(v.at, 0)
			res, err := dcap.Verify(q, c, dcap.Options{Now: at})
			if v.wantErr != nil {
				if !errors.Is(err, v.wantErr) || res != nil {
					t.Fatalf("Verify(%s) = %v, %v; want error %v", v.dir, res, err, v.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Verify(%s): %v", v.dir, err)
			}
			if res.Status != v.wantStatus {
				t.Errorf("Verify(%s).Status = %v, want %v", v.dir, res.Status, v.wantStatus)
			}
			if !slices.Equal(res.AdvisoryIDs, v.advisories) {
				t.Errorf("Verify(%s).AdvisoryIDs = %q, want %q", v.dir, res.AdvisoryIDs, v.advisories)
			}
			if v.module != "" && res.TDXModuleIdentity != v.module {
				t.Errorf("module identity %q, want %q", res.TDXModuleIdentity, v.module)
			}
			if res.CollateralExpired || !res.IntelRoot {
				t.Errorf("expired=%v intelRoot=%v", res.CollateralExpired, res.IntelRoot)
			}
			t.Logf("%s: %v platform %v qe %v module %+v expiry %v", v.dir, res.Status, res.Platform.Status, res.QE.Status, res.Module, res.EarliestExpiration)
		})
	}
}

// TestRealVectorsExpiry checks Intel's time semantics on the real
// collateral: a day before the given time everything is valid; at the
// earliest nextUpdate (inclusive) the result is flagged expired but still
// evaluated; Strict turns that into ErrExpired.
func TestRealVectorsExpiry(t *testing.T) {
	for _, v := range realVectors {
		if v.wantErr != nil {
			continue
		}
		t.Run(v.dir, func(t *testing.T) {
			q, c := loadVector(t, v.dir)
			at := time.Unix(v.at, 0)
			res, err := dcap.Verify(q, c, dcap.Options{Now: at.Add(-24 * time.Hour), Strict: true})
			if err != nil {
				t.Fatalf("a day earlier, strict: %v", err)
			}
			exp := res.EarliestExpiration
			if !exp.After(at) {
				t.Fatalf("earliest expiration %v is not after the vector time %v", exp, at)
			}
			res, err = dcap.Verify(q, c, dcap.Options{Now: exp})
			if err != nil {
				t.Fatalf("at expiry: %v", err)
			}
			if !res.CollateralExpired || res.Status != v.wantStatus {
				t.Errorf("at expiry: expired=%v status=%v, want true %v", res.CollateralExpired, res.Status, v.wantStatus)
			}
			res, err = dcap.Verify(q, c, dcap.Options{Now: exp.Add(-time.Second)})
			if err != nil || res.CollateralExpired {
				t.Errorf("a second before expiry: expired=%v err=%v", res != nil && res.CollateralExpired, err)
			}
			if _, err := dcap.Verify(q, c, dcap.Options{Now: exp, Strict: true}); !errors.Is(err, dcap.ErrExpired) {
				t.Errorf("at expiry, strict: err = %v, want ErrExpired", err)
			}
		})
	}
}

// TestParseOnlyVectorsChainToIntel checks the hex quotes without
// collateral: PCK chain, QE report and quote signatures up to the Intel root.
func TestParseOnlyVectorsChainToIntel(t *testing.T) {
	dir := testvectors.Path(t, "dcap", "parse-only")
	for _, name := range []string{"tappd-tdx-v4.hex", "tdx-v4-0x.hex"} {
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			raw, err := quote.DecodeInput(text)
			if err != nil {
				t.Fatal(err)
			}
			q, err := quote.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if err := dcap.VerifySignatures(q, dcap.Options{}); err != nil {
				t.Fatalf("VerifySignatures: %v", err)
			}
			// A flipped byte in the signed body must break it.
			bad := slices.Clone(raw)
			bad[200] ^= 1
			qb, err := quote.Parse(bad)
			if err != nil {
				t.Fatal(err)
			}
			if err := dcap.VerifySignatures(qb, dcap.Options{}); !errors.Is(err, dcap.ErrQuoteSignature) {
				t.Errorf("flipped body byte: err = %v, want ErrQuoteSignature", err)
			}
		})
	}
}

// TestVerifierMatchesVerify runs the caching Verifier twice over every
// vector and compares with the pure Verify.
func TestVerifierMatchesVerify(t *testing.T) {
	v := dcap.NewVerifier(dcap.VerifierOptions{})
	for _, rv := range realVectors {
		t.Run(rv.dir, func(t *testing.T) {
			q, c := loadVector(t, rv.dir)
			at := time.Unix(rv.at, 0)
			want, wantErr := dcap.Verify(q, c, dcap.Options{Now: at})
			for i := range 2 {
				got, err := v.Verify(q, c, at)
				if (err == nil) != (wantErr == nil) || (err != nil && err.Error() != wantErr.Error()) {
					t.Fatalf("round %d: err = %v, want %v", i, err, wantErr)
				}
				if err == nil && (got.Status != want.Status || !slices.Equal(got.AdvisoryIDs, want.AdvisoryIDs) || got.EarliestExpiration != want.EarliestExpiration) {
					t.Errorf("round %d: %v %v, want %v %v", i, got.Status, got.AdvisoryIDs, want.Status, want.AdvisoryIDs)
				}
			}
		})
	}
}
