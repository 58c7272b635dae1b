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
