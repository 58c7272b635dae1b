package ear

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// TestAppendPayloadMatchesEncodingJSON checks that Sign's payload encoder
// writes what json.Marshal writes for the same claims (every field set and
// unset, strings that need escaping, several submodules), and that
// annotated evidence that is not compact or holds characters json.Marshal
// HTML-escapes decodes to the same value, and that invalid evidence is
// refused.
func TestAppendPayloadMatchesEncodingJSON(t *testing.T) {
	_, st := Derive(Summary{Authentic: true, Measurements: Passed})
	// Distinct values, so a member written from another field fails.
	tv := TrustVector{InstanceIdentity: 2, Configuration: 3, Executables: 32, FileSystem: 33,
		Hardware: 96, RuntimeOpaque: 97, StorageOpaque: 99, SourcedData: -1}
	full := Claims{
		Profile: Profile, IssuedAt: 1700000000, ExpiresAt: 1700000300, Issuer: "https://v.example/<&>\u2028\"quoted\"",
		ID: "0123456789abcdef", Nonce: "n\x01ünï\xffcode", VerifierID: VerifierID{Developer: "dev", Build: "tdproof v1"},
		Submods: map[string]Appraisal{
			SubmodTDX:    {Status: st, TrustVector: &tv, PolicyID: PolicyID("default", "3"), Claims: json.RawMessage(`{"a":1,"b":[true,null,"x"]}`)},
			SubmodDstack: {Status: StatusWarning},
			"z\"sub":     {Status: StatusContraindicated, Claims: json.RawMessage(`{}`)},
		},
	}
	// Every field that json.Marshal writes is set, so that a field added
	// to Claims, VerifierID or Appraisal and not to appendPayload fails.
	for _, v := range []any{full, full.VerifierID, full.Submods[SubmodTDX], *full.Submods[SubmodTDX].TrustVector} {
		rv := reflect.ValueOf(v)
		for i := range rv.NumField() {
			if f := rv.Type().Field(i); f.Tag.Get("json") != "-" && rv.Field(i).IsZero() {
				t.Errorf("%s.%s is not set by this test", rv.Type().Name(), f.Name)
			}
		}
	}
	minimal := Claims{Profile: Profile, IssuedAt: 1, ExpiresAt: 2, Submods: map[string]Appraisal{SubmodSNP: {Status: StatusAffirming}}}
	for i, c := range []Claims{full, minimal} {
		got, err := appendPayload(nil, &c)
		if err != nil {
			t.Fatal(err)
		}
		want, err := json.Marshal(&c)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(want) {
			t.Errorf("claims %d:\n got %s\nwant %s", i, got, want)
		}
	}

	spaced := full
	spaced.Submods = map[string]Appraisal{SubmodTDX: {Status: st, Claims: json.RawMessage(" {\n \"html\" : \"<a&b>\", \"n\": [ 1 , 2 ] }\n")}}
	got, err := appendPayload(nil, &spaced)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := json.Marshal(&spaced)
	var g, w any
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("payload %s: %v", got, err)
	}
	if err := json.Unmarshal(want, &w); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("spaced evidence:\n got %s\nwant %s", got, want)
	}

	for _, bad := range []string{`{"a":`, `{"a":1} x`, `{"a":1}{"b":2}`, `{'a':1}`} {
		c := minimal
		c.Submods = map[string]Appraisal{SubmodTDX: {Status: StatusAffirming, Claims: json.RawMessage(bad)}}
		if _, err := appendPayload(nil, &c); err == nil {
			t.Errorf("evidence %q accepted", bad)
		}
		s, err := NewSigner(mustKeySet(t))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Sign(c); !errors.Is(err, ErrClaims) {
			t.Errorf("Sign with evidence %q: %v, want ErrClaims", bad, err)
		}
	}
}

func mustKeySet(t *testing.T) *KeySet {
	t.Helper()
	k, err := GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	ks, err := NewKeySet(k)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestAppendPayloadClaimsCompact checks that evidence marked compact is
// copied as given, and that for compact evidence the payload is the one
// the compaction pass writes.
func TestAppendPayloadClaimsCompact(t *testing.T) {
	ev := json.RawMessage(`{"tdx":{"a":1,"b":["x"]},"tee":"tdx"}`)
	c := Claims{Profile: Profile, IssuedAt: 1, ExpiresAt: 2, Submods: map[string]Appraisal{SubmodTDX: {Status: StatusAffirming, Claims: ev}}}
	slow, err := appendPayload(nil, &c)
	if err != nil {
		t.Fatal(err)
	}
	c.Submods = map[string]Appraisal{SubmodTDX: {Status: StatusAffirming, Claims: ev, ClaimsCompact: true}}
	fast, err := appendPayload(nil, &c)
	if err != nil {
		t.Fatal(err)
	}
	if string(fast) != string(slow) {
		t.Errorf("compact evidence:\n got %s\nwant %s", fast, slow)
	}
	// Marked compact, spaced evidence is copied verbatim (the marker is a
	// promise of the caller, not checked).
	c.Submods = map[string]Appraisal{SubmodTDX: {Status: StatusAffirming, Claims: json.RawMessage(`{ "a" : 1 }`), ClaimsCompact: true}}
	verbatim, err := appendPayload(nil, &c)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(verbatim), `"ear.veraison.annotated-evidence":{ "a" : 1 }}`) {
		t.Errorf("evidence not copied verbatim: %s", verbatim)
	}
}

// TestSignClaimsCompactNotJSON: evidence marked compact that is not one
// JSON value is refused, never copied into a signed payload, where
// members after it could override the submodule's own (a second
// "ear.status" wins with encoding/json).
func TestSignClaimsCompactNotJSON(t *testing.T) {
	s, err := NewSigner(mustKeySet(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{`{},"ear.status":"affirming"`, `{"a":1`, `{"a":1} x`, `{'a':1}`, `{"a":"` + "\x01" + `"}`} {
		c := Claims{Submods: map[string]Appraisal{SubmodTDX: {Status: StatusContraindicated, Claims: json.RawMessage(bad), ClaimsCompact: true}}}
		if _, _, err := s.Sign(c); !errors.Is(err, ErrClaims) {
			t.Errorf("Sign with compact-marked evidence %q: %v, want ErrClaims", bad, err)
		}
	}
}
