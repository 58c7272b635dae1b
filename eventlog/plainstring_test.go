package eventlog

import (
	"encoding/json"
	"testing"
)

// TestPlainString checks that the fast path answers only what
// encoding/json answers for the same literal.
func TestPlainString(t *testing.T) {
	for _, raw := range []string{
		`"ab01"`, `""`, `"systemReady"`, `"a\"b"`, `"a\\b"`, `"\u0041"`, `"é"`, "\"a\x01\"",
		"\"a\x7f\"", `null`, `12`, `"abc`, `abc"`, `"`, ` "ab"`, `"a"b"`, "\"\xff\"",
	} {
		got, ok := plainString([]byte(raw))
		var want string
		err := json.Unmarshal([]byte(raw), &want)
		if ok && (err != nil || got != want) {
			t.Errorf("plainString(%q) = %q, encoding/json: %q, %v", raw, got, want, err)
		}
		if !ok && got != "" {
			t.Errorf("plainString(%q) = %q, false", raw, got)
		}
	}
	if s, ok := plainString([]byte(`"0a1B"`)); !ok || s != "0a1B" {
		t.Errorf(`plainString("0a1B") = %q, %v`, s, ok)
	}
}
