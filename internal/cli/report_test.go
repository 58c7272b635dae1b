package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/internal/verifiersvc"
)

// TestReportCommand: tdproof report writes the HTML report and, with
// --format json, the /v1/verify response with its details.
func TestReportCommand(t *testing.T) {
	t.Parallel()
	ev := testvectors.Path(t, "dstack", "quote-report.json")
	coll := testvectors.Path(t, "dcap", "tdx-v4-90c06f-dstack", "collateral.json")
	out := filepath.Join(t.TempDir(), "report.html")
	o := invoke(t, nil, "report", ev, "--collateral", coll, "--at", "1774003274", "--html", out)
	o.wantCode(t, exitOK)
	if !strings.Contains(o.stdout, "Contraindicated: the evidence is authentic") {
		t.Errorf("stdout: %s", o.stdout)
	}
	html, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`data-verdict="contraindicated"`, `id="system-ready-marker"`, "<style>"} {
		if !strings.Contains(string(html), want) {
			t.Errorf("report.html: no %q", want)
		}
	}

	o = invoke(t, nil, "report", ev, "--collateral", coll, "--at", "1774003274", "--format", "json")
	o.wantCode(t, exitOK)
	var resp verifiersvc.NativeResponse
	if err := json.Unmarshal([]byte(o.stdout), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Token == "" || resp.Result == nil || len(resp.Result.Chain) != 3 || len(resp.Result.EventLog) == 0 {
		t.Errorf("json: %s", o.stdout)
	}

	for _, args := range [][]string{
		{"report"},
		{"report", ev, "--collateral", coll, "--reference-value", "tdx.mr_td"},
		{"report", ev, "--collateral", coll, "--nonce", "zz"},
		{"report", ev, "--collateral", coll, "--ccel", ev},
	} {
		invoke(t, nil, args...).wantCode(t, exitUsage, args...)
	}
	invoke(t, []byte("neither"), "report", "-", "--collateral", coll).wantCode(t, exitMalformed)
}
