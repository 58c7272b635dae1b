package cli

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"testing"
	"time"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/tpm"
	"github.com/tdproof/tdproof/tpmsim"
)

func TestTPMVerifySimulatedWithRealLog(t *testing.T) {
	logBytes := testvectors.ReadFile(t, "multitee", "dstack", "cc-eventlog__samples__tpm_eventlog.bin")
	l, err := eventlog.ParseCCEL(logBytes)
	if err != nil {
		t.Fatal(err)
	}
	vals, err := tpm.ReplayLog(l)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	s, err := tpmsim.New(at, false)
	if err != nil {
		t.Fatal(err)
	}
	tdx := []byte("a TDX quote")
	var pcrs []tpm.PCRValue
	type pv struct {
		Index     int    `json:"index"`
		Algorithm string `json:"algorithm"`
		Value     string `json:"value"`
	}
	var pvs []pv
	for _, i := range []int{0, 2, 14} {
		v := vals[i]
		pcrs = append(pcrs, tpm.PCRValue{Index: i, Value: v[:]})
		pvs = append(pvs, pv{i, "sha256", hex.EncodeToString(v[:])})
	}
	extra := sha256Sum(tdx)
	msg := tpmsim.Attest(extra, pcrs)
	sig, err := s.Sign(msg)
	if err != nil {
		t.Fatal(err)
	}
	q, _ := json.Marshal(map[string]any{"message": hex.EncodeToString(msg), "signature": hex.EncodeToString(sig),
		"pcr_values": pvs, "ak_cert": "", "platform": "gcp", "event_log": []any{}})
	dir := t.TempDir()
	qf := writeFile(t, dir, "q.json", q)
	lf := writeFile(t, dir, "log.bin", logBytes)
	ak := writeFile(t, dir, "ak.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.AKCert.Raw}))
	root := writeFile(t, dir, "root.der", s.Root.Raw)
	inter := writeFile(t, dir, "inter.der", s.Intermediate.Raw)
	tq := writeFile(t, dir, "tdx.bin", tdx)
	args := []string{"tpm", "verify", qf, "--eventlog", lf, "--ak-cert", ak, "--trusted-root", root, "--intermediate", inter,
		"--tdx-quote", tq, "--at", "2026-12-06T12:00:00Z", "--format", "json"}
	o := invoke(t, nil, args...)
	o.wantCode(t, exitOK, args...)
	var out tpmOutput
	decodeJSON(t, o, &out)
	if out.UKIDigest != "9ab14a46f858662a89adc102d2a57a13f52f75c1769d65a4c34edbbfc8855f0f" || len(out.Replayed) != 2 || out.GoogleRoot {
		t.Fatalf("%+v", out)
	}
	// Another TDX quote: the binding fails.
	other := writeFile(t, dir, "tdx2.bin", []byte("another TDX quote"))
	args[12] = other
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
	// The pinned Google root does not accept the test AK.
	args = []string{"tpm", "verify", qf, "--eventlog", lf, "--ak-cert", ak, "--at", "2026-12-06T12:00:00Z"}
	invoke(t, nil, args...).wantCode(t, exitNotAuthentic, args...)
}

func sha256Sum(b []byte) []byte {
	sum := sha256.Sum256(b)
	return sum[:]
}
