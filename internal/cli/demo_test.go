package cli

import (
	"strings"
	"testing"
)

func TestDemo(t *testing.T) {
	o := invoke(t, nil, "demo")
	o.wantCode(t, exitOK, "demo")
	for _, want := range []string{
		"1. simulated TD booted: MRTD ",
		"2. verifier ready:",
		"SIMULATOR root CA",
		"3. KBS listening on http://127.0.0.1:",
		"4. no reference values yet: the genuine TD is authentic but at most 'warning'",
		"5. reference values added",
		"6. secret released: ",
		"agent recorded the app identity in RTMR3",
		"7. tampered TD refused ",
		"8. same image, another app refused ",
		"9. the same app omitting its event log refused",
		"PolicyDeny",
		"demo complete",
	} {
		if !strings.Contains(o.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, o.stdout)
		}
	}
	if o.stderr != "" {
		t.Errorf("stderr: %s", o.stderr)
	}
}
