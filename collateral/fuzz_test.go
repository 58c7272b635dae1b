package collateral_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/internal/testvectors"
)

const syntheticTCBInfo = `{"id":"TDX","version":3,"issueDate":"2025-06-19T10:16:03Z","nextUpdate":"2025-07-19T10:16:03Z","fmspc":"B0C06F000000","pceId":"0000","tcbType":0,"tcbEvaluationDataNumber":17,"tdxModule":{"mrsigner":"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000","attributes":"0000000000000000","attributesMask":"FFFFFFFFFFFFFFFF"},"tdxModuleIdentities":[{"id":"TDX_01","mrsigner":"000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000","attributes":"0000000000000000","attributesMask":"FFFFFFFFFFFFFFFF","tcbLevels":[{"tcb":{"isvsvn":4},"tcbDate":"2024-03-13T00:00:00Z","tcbStatus":"UpToDate"},{"tcb":{"isvsvn":2},"tcbDate":"2023-08-09T00:00:00Z","tcbStatus":"OutOfDate","advisoryIDs":["INTEL-SA-00960"]}]}],"tcbLevels":[{"tcb":{"sgxtcbcomponents":[{"svn":2},{"svn":2},{"svn":2},{"svn":2},{"svn":3},{"svn":1},{"svn":0},{"svn":3},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0}],"pcesvn":11,"tdxtcbcomponents":[{"svn":5},{"svn":0},{"svn":2},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0}]},"tcbDate":"2024-03-13T00:00:00Z","tcbStatus":"UpToDate"},{"tcb":{"sgxtcbcomponents":[{"svn":1},{"svn":1},{"svn":2},{"svn":2},{"svn":3},{"svn":1},{"svn":0},{"svn":3},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0}],"pcesvn":11,"tdxtcbcomponents":[{"svn":3},{"svn":0},{"svn":2},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0},{"svn":0}]},"tcbDate":"2023-02-15T00:00:00Z","tcbStatus":"OutOfDate","advisoryIDs":["INTEL-SA-00837"]}]}`

const syntheticQEIdentity = `{"id":"TD_QE","version":2,"issueDate":"2025-06-19T10:32:27Z","nextUpdate":"2025-07-19T10:32:27Z","tcbEvaluationDataNumber":17,"miscselect":"00000000","miscselectMask":"FFFFFFFF","attributes":"11000000000000000000000000000000","attributesMask":"FBFFFFFFFFFFFFFF0000000000000000","mrsigner":"DC9E2A7C6F948F17474E34A7FC43ED030F7C1563F1BABDDF6340C82E0E54A8C5","isvprodid":2,"tcbLevels":[{"tcb":{"isvsvn":4},"tcbDate":"2024-03-13T00:00:00Z","tcbStatus":"UpToDate"}]}`

// realSigned returns the signed tcb_info / qe_identity strings of the
// shared collateral.json files, when present.
func realSigned(field string) [][]byte {
	var out [][]byte
	for _, d := range []string{"tdx-v4-b0c06f", "sgx-v3-00a067", "tdx-v5-90c06f"} {
		b, err := os.ReadFile(filepath.Join(testvectors.Location(), "dcap", d, "collateral.json"))
		if err != nil {
			continue
		}
		var m map[string]any
		if json.Unmarshal(b, &m) == nil {
			if s, ok := m[field].(string); ok {
				out = append(out, []byte(s))
			}
		}
	}
	return out
}

func TestSyntheticDocuments(t *testing.T) {
	info, err := collateral.ParseTCBInfo([]byte(syntheticTCBInfo))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.TCBLevels) != 2 || info.TCBLevels[0].TCBStatus != collateral.UpToDate {
		t.Errorf("levels %+v", info.TCBLevels)
	}
	if _, err := collateral.ParseQEIdentity([]byte(syntheticQEIdentity)); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseTCBInfo(f *testing.F) {
	f.Add([]byte(syntheticTCBInfo))
	for _, s := range realSigned("tcb_info") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		info, err := collateral.ParseTCBInfo(raw)
		if (err == nil) == (info == nil) {
			t.Fatalf("result %v with error %v", info, err)
		}
		if err != nil {
			return
		}
		tdx := info.ID == "TDX"
		for i := 1; i < len(info.TCBLevels); i++ {
			a, b := info.TCBLevels[i-1], info.TCBLevels[i]
			if a.SGXComponents == b.SGXComponents && a.PCESVN == b.PCESVN && (!tdx || a.TDXComponents == b.TDXComponents) {
				t.Fatal("duplicate levels accepted")
			}
		}
	})
}

func FuzzParseQEIdentity(f *testing.F) {
	f.Add([]byte(syntheticQEIdentity))
	for _, s := range realSigned("qe_identity") {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		id, err := collateral.ParseQEIdentity(raw)
		if (err == nil) == (id == nil) {
			t.Fatalf("result %v with error %v", id, err)
		}
		if err == nil {
			for i := 1; i < len(id.TCBLevels); i++ {
				if id.TCBLevels[i-1].ISVSVN <= id.TCBLevels[i].ISVSVN {
					t.Fatal("QE levels not strictly descending")
				}
			}
		}
	})
}
