package collateral_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/internal/testvectors"
)

func TestRealQVLJSON(t *testing.T) {
	dir := testvectors.Path(t, "dcap")
	for _, name := range []string{"tdx-v4-b0c06f", "sgx-v3-00a067", "tdx-v5-90c06f", "tdx-v4-90c06f-dstack"} {
		t.Run(name, func(t *testing.T) {
			data, err := os.ReadFile(filepath.Join(dir, name, "collateral.json"))
			if err != nil {
				t.Fatal(err)
			}
			c, err := collateral.ParseQVLJSON(data)
			if err != nil {
				t.Fatal(err)
			}
			info := c.TCBInfo.Info
			t.Logf("%s v%d fmspc %x levels %d modules %d eval %d; QE %s levels %d", info.ID, info.Version, info.FMSPC, len(info.TCBLevels), len(info.TDXModuleIdentities), info.TCBEvaluationDataNumber, c.QEIdentity.Identity.ID, len(c.QEIdentity.Identity.TCBLevels))
			out, err := c.MarshalQVLJSON()
			if err != nil {
				t.Fatal(err)
			}
			c2, err := collateral.ParseQVLJSON(out)
			if err != nil {
				t.Fatal(err)
			}
			if string(c2.TCBInfo.Raw) != string(c.TCBInfo.Raw) || string(c2.QEIdentity.Raw) != string(c.QEIdentity.Raw) {
				t.Error("round trip changed the signed bytes")
			}
		})
	}
}

func TestRealPCSDir(t *testing.T) {
	dir := testvectors.Path(t, "dcap", "tdx-v4-50806f-pcs", "pcs")
	c, err := collateral.ReadPCSDir(os.DirFS(dir), collateral.PCSSelector{TEE: "tdx", FMSPC: "50806F000000", CA: "platform"})
	if err != nil {
		t.Fatal(err)
	}
	if c.TCBInfo.Info.ID != "TDX" || len(c.TCBInfo.Info.TDXModuleIdentities) != 0 {
		t.Errorf("tcb info %s with %d module identities", c.TCBInfo.Info.ID, len(c.TCBInfo.Info.TDXModuleIdentities))
	}
	if len(c.TCBInfoIssuerChain.Certs) != 2 || len(c.PCKCRLIssuerChain.Certs) != 2 {
		t.Errorf("chains: %d %d", len(c.TCBInfoIssuerChain.Certs), len(c.PCKCRLIssuerChain.Certs))
	}
}

// TestIdentityLevelStatuses: an enclave (QE) identity or TDX module
// identity level may only be UpToDate, OutOfDate or Revoked, wherever it
// is in the list (Intel's QVL: QEIDENTITY_UNSUPPORTED_FORMAT).
func TestIdentityLevelStatuses(t *testing.T) {
	const upToDate = `"tcbStatus":"UpToDate"}]`
	for _, st := range collateral.AllStatuses() {
		want := st == collateral.UpToDate || st == collateral.OutOfDate || st == collateral.Revoked
		if got := collateral.IdentityLevelStatus(st); got != want {
			t.Errorf("IdentityLevelStatus(%v) = %v", st, got)
		}
		// A second, lower level that no QE at ISVSVN 4 would match.
		extra := `"tcbStatus":"UpToDate"},{"tcb":{"isvsvn":1},"tcbDate":"2023-02-15T00:00:00Z","tcbStatus":"` + st.String() + `"}]`
		qe := strings.Replace(syntheticQEIdentity, upToDate, extra, 1)
		if qe == syntheticQEIdentity {
			t.Fatal("synthetic QE identity has no level to extend")
		}
		_, err := collateral.ParseQEIdentity([]byte(qe))
		if want != (err == nil) || (err != nil && !errors.Is(err, collateral.ErrMalformed)) {
			t.Errorf("QE identity with a %v level: err = %v, want accepted %v", st, err, want)
		}
		// The only (matched) level.
		_, err = collateral.ParseQEIdentity([]byte(strings.Replace(syntheticQEIdentity, upToDate, `"tcbStatus":"`+st.String()+`"}]`, 1)))
		if want != (err == nil) {
			t.Errorf("QE identity whose only level is %v: err = %v, want accepted %v", st, err, want)
		}
		// A module identity level.
		mod := strings.Replace(syntheticTCBInfo, `"tcbStatus":"OutOfDate","advisoryIDs":["INTEL-SA-00960"]`, `"tcbStatus":"`+st.String()+`"`, 1)
		if mod == syntheticTCBInfo {
			t.Fatal("synthetic TCB info has no module level to change")
		}
		if _, err := collateral.ParseTCBInfo([]byte(mod)); want != (err == nil) {
			t.Errorf("module identity with a %v level: err = %v, want accepted %v", st, err, want)
		}
	}
}
