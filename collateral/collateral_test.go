package collateral_test

import (
	"os"
	"path/filepath"
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
