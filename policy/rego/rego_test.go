package rego_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/policy/rego"
)

func TestCompileErrors(t *testing.T) {
	t.Parallel()
	for name, src := range map[string]string{
		"syntax":       "package tdproof.policy\nallow if {",
		"package":      "package policy\nallow := true",
		"http.send":    "package tdproof.policy\nallow if http.send({\"method\": \"get\", \"url\": \"http://x\"}).status_code == 200",
		"net lookup":   "package tdproof.policy\nallow if count(net.lookup_ip_addr(\"x\")) > 0",
		"opa.runtime":  "package tdproof.policy\nallow if opa.runtime()",
		"v0 syntax":    "package tdproof.policy\nallow { true }",
		"unsafe var":   "package tdproof.policy\nallow if x > 1",
		"nonexistent":  "package tdproof.policy\nallow if no.such.builtin(1)",
		"empty policy": "",
	} {
		if p, err := rego.Compile("t", "1", []byte(src)); !errors.Is(err, policy.ErrInvalid) || p != nil {
			t.Errorf("Compile(%s) = %v, %v; want ErrInvalid", name, p, err)
		}
	}
}

func TestParse(t *testing.T) {
	t.Parallel()
	p, err := rego.Parse(policy.FormatRego, "r", "2", []byte("package tdproof.policy\nallow := true"))
	if err != nil || p.Format() != policy.FormatRego || p.ID() != "r" || p.Version() != "2" || p.Rules() != nil {
		t.Errorf("Parse(rego) = %+v, %v", p, err)
	}
	if !strings.Contains(string(p.Source()), "allow := true") {
		t.Errorf("Source = %q", p.Source())
	}
	p, err = rego.Parse(policy.FormatYAML, "y", "1", []byte("min_tcb_eval_num: 3"))
	if err != nil || p.Format() != policy.FormatYAML || p.Rules().MinTCBEvalNum != 3 {
		t.Errorf("Parse(yaml) = %+v, %v", p, err)
	}
	if _, err := rego.Parse("json", "x", "1", nil); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("Parse(json) = %v", err)
	}
	if _, err := rego.Compile("big", "1", make([]byte, policy.MaxPolicySize+1)); !errors.Is(err, policy.ErrInvalid) {
		t.Errorf("oversized policy: %v", err)
	}
}
