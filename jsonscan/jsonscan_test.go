package jsonscan

import (
	"encoding/json"
	"testing"
)

// TestPlainAndString checks PlainString and SkipString on the forms they
// take and refuse.
func TestPlainAndString(t *testing.T) {
	for _, tc := range []struct {
		in          string
		plain, skip bool
	}{
		{`"abc"`, true, true}, {`"a\"b"`, false, true}, {`"\u00e9"`, false, true}, {`"é"`, false, true},
		{"\"\x01\"", false, false}, {`"\q"`, false, false}, {`"\u00g0"`, false, false}, {`"open`, false, false}, {`x`, false, false},
	} {
		_, pend, pok := PlainString([]byte(tc.in), 0)
		send, sok := SkipString([]byte(tc.in), 0)
		if pok != tc.plain || sok != tc.skip || pok && pend != len(tc.in) || sok && send != len(tc.in) {
			t.Errorf("%q: PlainString %v (end %d), SkipString %v (end %d); want %v, %v", tc.in, pok, pend, sok, send, tc.plain, tc.skip)
		}
	}
}

// FuzzSkipValue: SkipValue accepts a document only if encoding/json does,
// and every document encoding/json accepts that nests at most
// MaxDepth deep.
func FuzzSkipValue(f *testing.F) {
	for _, s := range []string{`0`, `-0.5e-7`, `1E+2`, `"\/\b\f\n\r\t\"\\\u00aF"`, `[[]]`, `{"a":{}}`, ` true `, `nul`, `1.`, `-`, `"\u00g0"`, `"` + "\x1f" + `"`,
		`{"quote":"00ff","event_log":"[{\"imr\":0}]","vm_config":{"cpu_count":2,"x":[1,2.5,-3e2,null,true,false]}}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		end, ok := SkipValue(data, SkipSpace(data, 0))
		ok = ok && SkipSpace(data, end) == len(data)
		valid := json.Valid(data)
		if ok && !valid {
			t.Fatalf("%q: SkipValue accepts what encoding/json refuses", data)
		}
		if valid && !ok && depth(data) <= MaxDepth {
			t.Fatalf("%q: SkipValue refuses valid JSON", data)
		}
	})
}

// depth is the deepest bracket nesting of data outside strings (of valid
// JSON).
func depth(data []byte) int {
	d, dmax, in, esc := 0, 0, false, false
	for _, c := range data {
		switch {
		case in && esc:
			esc = false
		case in && c == '\\':
			esc = true
		case c == '"':
			in = !in
		case !in && (c == '{' || c == '['):
			d++
			dmax = max(dmax, d)
		case !in && (c == '}' || c == ']'):
			d--
		}
	}
	return dmax
}
