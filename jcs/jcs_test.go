package jcs_test

import (
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/jcs"
)

// TestRFC8785Example is the example of RFC 8785 §3.2.2 (input) and
// §3.2.3 (output).
func TestRFC8785Example(t *testing.T) {
	t.Parallel()
	in := `{
  "numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],
  "string": "\u20ac$\u000F\u000aA'\u0042\u0022\u005c\\\"\/",
  "literals": [null, true, false]
}`
	want := `{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\u000f\nA'B\"\\\\\"/"}`
	got, err := jcs.Canonicalize([]byte(in))
	if err != nil {
		t.Fatalf("Canonicalize: %v", err)
	}
	if string(got) != want {
		t.Errorf("Canonicalize =\n%s\nwant\n%s", got, want)
	}
}

// TestRFC8785Sorting is the property-sorting example of RFC 8785 §3.2.3:
// names are ordered by UTF-16 code units, so U+1F600 (surrogates D83D
// DE00) sorts before U+FB33.
func TestRFC8785Sorting(t *testing.T) {
	t.Parallel()
	in := `{
  "\u20ac": "Euro Sign",
  "\r": "Carriage Return",
  "\ufb33": "Hebrew Letter Dalet With Dagesh",
  "1": "One",
  "\ud83d\ude00": "Emoji: Grinning Face",
  "\u0080": "Control",
  "\u00f6": "Latin Small Letter O With Diaeresis"
}`
	want := "{\"\\r\":\"Carriage Return\",\"1\":\"One\",\"\u0080\":\"Control\"," +
		"\"\u00f6\":\"Latin Small Letter O With Diaeresis\",\"\u20ac\":\"Euro Sign\"," +
		"\"\U0001F600\":\"Emoji: Grinning Face\",\"\ufb33\":\"Hebrew Letter Dalet With Dagesh\"}"
	got, err := jcs.Canonicalize([]byte(in))
	if err != nil {
		t.Fatalf("Canonicalize: %v", err)
	}
	if string(got) != want {
		t.Errorf("Canonicalize =\n%s\nwant\n%s", got, want)
	}
}

// TestRFC8785Numbers is the number serialization table of RFC 8785
// Appendix B, given as IEEE-754 bit patterns. The JSON input for each
// case is the shortest Go spelling of the value, so the test exercises
// parsing and ECMAScript formatting together.
func TestRFC8785Numbers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		bits uint64
		want string // "" means the value is not representable in JSON
	}{
		{0x0000000000000000, "0"},
		{0x8000000000000000, "0"},
		{0x0000000000000001, "5e-324"},
		{0x8000000000000001, "-5e-324"},
		{0x7fefffffffffffff, "1.7976931348623157e+308"},
		{0xffefffffffffffff, "-1.7976931348623157e+308"},
		{0x4340000000000000, "9007199254740992"},
		{0xc340000000000000, "-9007199254740992"},
		{0x4430000000000000, "295147905179352830000"},
		{0x7fffffffffffffff, ""},
		{0x7ff0000000000000, ""},
		{0x44b52d02c7e14af5, "9.999999999999997e+22"},
		{0x44b52d02c7e14af6, "1e+23"},
		{0x44b52d02c7e14af7, "1.0000000000000001e+23"},
		{0x444b1ae4d6e2ef4e, "999999999999999700000"},
		{0x444b1ae4d6e2ef4f, "999999999999999900000"},
		{0x444b1ae4d6e2ef50, "1e+21"},
		{0x3eb0c6f7a0b5ed8c, "9.999999999999997e-7"},
		{0x3eb0c6f7a0b5ed8d, "0.000001"},
		{0x41b3de4355555553, "333333333.3333332"},
		{0x41b3de4355555554, "333333333.33333325"},
		{0x41b3de4355555555, "333333333.3333333"},
		{0x41b3de4355555556, "333333333.3333334"},
		{0x41b3de4355555557, "333333333.33333343"},
		{0xbecbf647612f3696, "-0.0000033333333333333333"},
		{0x43143ff3c1cb0959, "1424953923781206.2"},
	}
	for _, tc := range tests {
		f := math.Float64frombits(tc.bits)
		if tc.want == "" {
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				t.Fatalf("%016x: test table expects NaN or Inf", tc.bits)
			}
			continue // NaN and Infinity have no JSON spelling
		}
		in := strconv.FormatFloat(f, 'g', -1, 64)
		got, err := jcs.Canonicalize([]byte(in))
		if err != nil {
			t.Errorf("Canonicalize(%s) [%016x]: %v", in, tc.bits, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("Canonicalize(%s) [%016x] = %s, want %s", in, tc.bits, got, tc.want)
		}
	}
}

func TestNumberSpellings(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"1e21", "1e+21"},
		{"1E+21", "1e+21"},
		{"1e-7", "1e-7"},
		{"0.0000001", "1e-7"},
		{"0.000001", "0.000001"},
		{"1e20", "100000000000000000000"},
		{"-0", "0"},
		{"-0.0e10", "0"},
		{"5e-324", "5e-324"},
		{"4.9e-324", "5e-324"},
		{"1e-400", "0"}, // underflow rounds to zero, as JSON.parse does
		{"333333333.3333333", "333333333.3333333"},
		{"100", "100"},
		{"1.0", "1"},
		{"123456789012345678901234567890", "1.2345678901234568e+29"},
		{"0.1", "0.1"},
		{"-1.5e-10", "-1.5e-10"},
		{"9007199254740993", "9007199254740992"},
	}
	for _, tc := range tests {
		got, err := jcs.Canonicalize([]byte(tc.in))
		if err != nil {
			t.Errorf("Canonicalize(%s): %v", tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestStrings(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{`"\u0000\u0001\u001f\u0020"`, `"\u0000\u0001\u001f "`},
		{`"\b\f\n\r\t"`, `"\b\f\n\r\t"`},
		{`"\u0008\u000C\u000a\u000D\u0009"`, `"\b\f\n\r\t"`},
		{`"\/\u002f/"`, `"///"`},
		{`"\u007f\u2028\u2029"`, "\"\u007f\u2028\u2029\""},
		{`"<>&"`, `"<>&"`},
		{`"\u003c\u003E\u0026"`, `"<>&"`},
		{`"\uD834\uDD1E"`, "\"\U0001D11E\""},
		{`"é"`, `"é"`},
	}
	for _, tc := range tests {
		got, err := jcs.Canonicalize([]byte(tc.in))
		if err != nil {
			t.Errorf("Canonicalize(%s): %v", tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("Canonicalize(%s) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestStructure(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{" \t\r\n{ } \n", "{}"},
		{"[ ]", "[]"},
		{`[1, [2, {"b": [], "a": {}}], "x"]`, `[1,[2,{"a":{},"b":[]}],"x"]`},
		{`{"b":1,"a":2,"aa":3,"A":4,"":5}`, `{"":5,"A":4,"a":2,"aa":3,"b":1}`},
		{`true`, `true`},
		{`null`, `null`},
		{`"top"`, `"top"`},
		// Keys are compared after unescaping.
		{`{"\u0062":1,"a":2}`, `{"a":2,"b":1}`},
	}
	for _, tc := range tests {
		got, err := jcs.Canonicalize([]byte(tc.in))
		if err != nil {
			t.Errorf("Canonicalize(%q): %v", tc.in, err)
			continue
		}
		if string(got) != tc.want {
			t.Errorf("Canonicalize(%q) = %s, want %s", tc.in, got, tc.want)
		}
	}
}

func TestSHA384Vector(t *testing.T) {
	t.Parallel()
	got, err := jcs.Canonicalize([]byte(`{"b":1,"a":"test","c":{"d":"e"}}`))
	if err != nil {
		t.Fatalf("Canonicalize: %v", err)
	}
	if want := `{"a":"test","b":1,"c":{"d":"e"}}`; string(got) != want {
		t.Fatalf("Canonicalize = %s, want %s", got, want)
	}
	sum := sha512.Sum384(got)
	const want = "e71ce8e70d814ba6639c3612ebee0ff1f76f650f8dbb5e47157e0f3f525cd22c4597480a186427c813ca941da78870c3"
	if hex.EncodeToString(sum[:]) != want {
		t.Errorf("SHA-384 = %x, want %s", sum, want)
	}
}

func TestErrors(t *testing.T) {
	t.Parallel()
	deep := strings.Repeat("[", 1001) + strings.Repeat("]", 1001)
	okDeep := strings.Repeat("[", 1000) + strings.Repeat("]", 1000)
	if _, err := jcs.Canonicalize([]byte(okDeep)); err != nil {
		t.Fatalf("Canonicalize(depth 1000): %v", err)
	}
	tests := []struct {
		name    string
		in      string
		wantErr error
	}{
		{"empty", "", jcs.ErrSyntax},
		{"space only", "  ", jcs.ErrSyntax},
		{"trailing data", "{} x", jcs.ErrSyntax},
		{"two values", "1 2", jcs.ErrSyntax},
		{"trailing comma array", "[1,]", jcs.ErrSyntax},
		{"trailing comma object", `{"a":1,}`, jcs.ErrSyntax},
		{"missing colon", `{"a" 1}`, jcs.ErrSyntax},
		{"unquoted key", `{a:1}`, jcs.ErrSyntax},
		{"single quotes", `'a'`, jcs.ErrSyntax},
		{"leading zero", "01", jcs.ErrSyntax},
		{"plus sign", "+1", jcs.ErrSyntax},
		{"bare dot", "1.", jcs.ErrSyntax},
		{"dot first", ".5", jcs.ErrSyntax},
		{"empty exponent", "1e", jcs.ErrSyntax},
		{"hex number", "0x10", jcs.ErrSyntax},
		{"NaN", "NaN", jcs.ErrSyntax},
		{"Infinity", "Infinity", jcs.ErrSyntax},
		{"bad literal", "tru", jcs.ErrSyntax},
		{"unterminated string", `"abc`, jcs.ErrSyntax},
		{"raw control char", "\"a\tb\"", jcs.ErrSyntax},
		{"bad escape", `"\x"`, jcs.ErrSyntax},
		{"short unicode escape", `"\u12"`, jcs.ErrSyntax},
		{"lone high surrogate", `"\ud800"`, jcs.ErrSyntax},
		{"lone high surrogate then char", `"\ud800x"`, jcs.ErrSyntax},
		{"high surrogate pair with non-low", `"\ud800\u0041"`, jcs.ErrSyntax},
		{"lone low surrogate", `"\udc00"`, jcs.ErrSyntax},
		{"invalid UTF-8", "\"\xff\"", jcs.ErrSyntax},
		{"invalid UTF-8 after escape", "\"\\n\xc3\"", jcs.ErrSyntax},
		{"UTF-8 encoded surrogate", "\"\xed\xa0\x80\"", jcs.ErrSyntax},
		{"BOM", "\xef\xbb\xbf{}", jcs.ErrSyntax},
		{"too deep", deep, jcs.ErrSyntax},
		{"duplicate key", `{"a":1,"a":2}`, jcs.ErrDuplicateKey},
		{"duplicate key after unescape", `{"a":1,"\u0061":2}`, jcs.ErrDuplicateKey},
		{"nested duplicate key", `[{"x":{"k":1,"k":1}}]`, jcs.ErrDuplicateKey},
		{"overflow", "1e400", jcs.ErrNumber},
		{"negative overflow", "-1.8e308", jcs.ErrNumber},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := jcs.Canonicalize([]byte(tc.in))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Canonicalize(%q) error = %v, want %v", tc.in, err, tc.wantErr)
			}
			if got != nil {
				t.Errorf("Canonicalize(%q) returned %q with an error", tc.in, got)
			}
			if _, ok := errors.AsType[*jcs.SyntaxError](err); !ok {
				t.Errorf("Canonicalize(%q) error %T is not a *jcs.SyntaxError", tc.in, err)
			}
			if !strings.HasPrefix(err.Error(), "jcs: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
			if verr := jcs.Validate([]byte(tc.in)); !errors.Is(verr, tc.wantErr) {
				t.Errorf("Validate(%q) = %v, want %v", tc.in, verr, tc.wantErr)
			}
		})
	}
}

func TestSyntaxErrorOffset(t *testing.T) {
	t.Parallel()
	_, err := jcs.Canonicalize([]byte(`{"a": [1, 2, x]}`))
	se, ok := errors.AsType[*jcs.SyntaxError](err)
	if !ok {
		t.Fatalf("error %v is not a *jcs.SyntaxError", err)
	}
	if se.Offset != 13 {
		t.Errorf("Offset = %d, want 13", se.Offset)
	}
}

func TestMarshal(t *testing.T) {
	t.Parallel()
	type inner struct {
		D string `json:"d"`
	}
	v := struct {
		B int               `json:"b"`
		A string            `json:"a"`
		C inner             `json:"c"`
		H string            `json:"h"`
		M map[string]uint64 `json:"m"`
	}{B: 1, A: "test", C: inner{D: "e"}, H: "<&>", M: map[string]uint64{"z": 1 << 60, "y": 3}}
	got, err := jcs.Marshal(v)
	if err != nil {
		t.Fatalf("Marshal: %v", err)
	}
	want := `{"a":"test","b":1,"c":{"d":"e"},"h":"<&>","m":{"y":3,"z":1152921504606847000}}`
	if string(got) != want {
		t.Errorf("Marshal = %s, want %s", got, want)
	}
	if _, err := jcs.Marshal(math.NaN()); err == nil {
		t.Error("Marshal(NaN) succeeded")
	}
	if _, err := jcs.Marshal(make(chan int)); err == nil {
		t.Error("Marshal(chan) succeeded")
	}
}
