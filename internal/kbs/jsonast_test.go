package kbs

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
)

// jsonSeeds are documents jsonValue must decode as ast.ValueFromReader
// does, or refuse as encoding/json does.
var jsonSeeds = []string{
	`{}`, `[]`, `null`, `true`, `false`, `0`, `-0`, `1`, `-12`, `3.25`, `1e3`, `1E-3`, `2.5e+10`, `-0.0e0`,
	`123456789012345678901234567890`, `1e400`, `1e999999999999`, `0.1e-400`,
	`""`, `"a"`, `"\u00e9\n\t\"\\\/"`, `"\ud83d\ude00"`, `"\ud800"`, "\"\xff\xfe\"", "\"caf\xc3\xa9\"", "\"\xef\xbf\xbd\"",
	` { "a" : [ 1 , 2 , { "b" : null } ] , "c" : "d" } `,
	`{"a":1,"a":2}`, `{"a":{"x":1},"a":[2]}`, `[[[[]]]]`, `{"":""}`,
	// Refused.
	``, ` `, `{`, `[`, `{"a"}`, `{"a":}`, `{"a":1,}`, `[1,]`, `[1 2]`, `01`, `1.`, `.5`, `-`, `1e`, `+1`, `tru`, `nul`, `"abc`,
	"\"a\x01b\"", `"\x"`, `"\u12"`, `{1:2}`, `[1]x`, `1 2`, `{"a":1}}`, `"\`,
}

// checkJSONValue requires jsonValue to agree with ast.ValueFromReader on
// every valid document and to refuse every invalid one.
func checkJSONValue(t *testing.T, data []byte) {
	got, err := jsonValue(data)
	if !json.Valid(data) {
		if err == nil {
			t.Fatalf("jsonValue(%q) = %v, want an error (not JSON)", data, got)
		}
		return
	}
	want, werr := ast.ValueFromReader(bytes.NewReader(data))
	if (err != nil) != (werr != nil) {
		t.Fatalf("jsonValue(%q): error %v, ast.ValueFromReader: error %v", data, err, werr)
	}
	if err != nil {
		return
	}
	if got.Compare(want) != 0 || got.String() != want.String() || got.Hash() != want.Hash() {
		t.Fatalf("jsonValue(%q) = %v, ast.ValueFromReader: %v", data, got, want)
	}
}

func TestJSONValue(t *testing.T) {
	for _, s := range jsonSeeds {
		checkJSONValue(t, []byte(s))
	}
	deep := strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1)
	if _, err := jsonValue([]byte(deep)); err == nil {
		t.Error("document nested beyond maxJSONDepth accepted")
	}
	tok, _ := tdsimClaims(t)
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	checkJSONValue(t, payload)
}

// FuzzJSONValue compares jsonValue with ast.ValueFromReader (over
// encoding/json) on arbitrary input, seeded with a tdsim TD's token
// claims and the documents above.
func FuzzJSONValue(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	tok, _ := tdsimClaims(f)
	if payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1]); err == nil {
		f.Add(payload)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		checkJSONValue(t, data)
	})
}
