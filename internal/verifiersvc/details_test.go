package verifiersvc_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/internal/verifiersvc"
)

// TestNativeDetails: "details": true adds the result's chain and
// event_log members; without it they are absent.
func TestNativeDetails(t *testing.T) {
	t.Parallel()
	c, err := collateral.ParseQVLJSON(testvectors.ReadFile(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json"))
	if err != nil {
		t.Fatal(err)
	}
	data := testvectors.ReadFile(t, "dstack", "quote-report.json")
	e := newEnv(t, c, nil, time.Unix(1774003274, 0), verifiersvc.Options{})
	_, raw := e.native(t, map[string]any{"dstack": json.RawMessage(data)})
	res, _ := raw["result"].(map[string]any)
	if _, ok := res["chain"]; ok {
		t.Error("chain without details")
	}
	if _, ok := res["event_log"]; ok {
		t.Error("event_log without details")
	}
	out, _ := e.native(t, map[string]any{"dstack": json.RawMessage(data), "details": true})
	if len(out.Result.Chain) != 3 || len(out.Result.EventLog) == 0 {
		t.Errorf("details: chain %d certificates, %d events", len(out.Result.Chain), len(out.Result.EventLog))
	}
}
