package jsonappend

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func same(t *testing.T, what string, got []byte, v any) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("%s:\n got %s\nwant %s", what, got, want)
	}
}

func TestMatchesMarshal(t *testing.T) {
	for _, s := range []string{"", "plain", "q\"b\\s", "<&>", "\x00\x1f\x7f", "é", "\u2028\u2029", "bad\xff\xfe", "tab\t"} {
		same(t, "string "+s, String(nil, s), s)
	}
	for _, l := range [][]string{nil, {}, {"a"}, {"a", "<b>", ""}} {
		same(t, "strings", Strings(nil, l), l)
	}
	same(t, "true", Bool(nil, true), true)
	same(t, "false", Bool(nil, false), false)
	for _, v := range []int64{0, -1, 1 << 62} {
		same(t, "int", Int(nil, v), v)
	}
	for _, tm := range []time.Time{{}, time.Unix(1700000000, 123456789).UTC(), time.Unix(1700000000, 0).In(time.FixedZone("x", 3600)),
		time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC)} {
		got, err := Time(nil, tm)
		if err != nil {
			t.Fatal(err)
		}
		same(t, "time", got, tm)
	}
	if _, err := Time(nil, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Error("year 10000 encoded")
	}
	// Offsets RFC 3339 has no form for: whatever json.Marshal does.
	for _, z := range []*time.Location{time.FixedZone("s", 30), time.FixedZone("d", 25*3600)} {
		tm := time.Unix(0, 0).In(z)
		got, err := Time(nil, tm)
		want, werr := json.Marshal(tm)
		if string(got) != string(want) || (err == nil) != (werr == nil) {
			t.Errorf("%v: got %s %v, want %s %v", tm, got, err, want, werr)
		}
	}
	if got := Key(Key(nil, true, "a"), false, "<b>"); string(got) != `"a":,"\u003cb\u003e":` {
		t.Errorf("keys: %s", got)
	}
}

func FuzzString(f *testing.F) {
	for _, s := range []string{"", "a", "<&>", "\u2028", "\xff", "mr_td"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		same(t, "string", String(nil, s), s)
	})
}

func BenchmarkStringHex(b *testing.B) {
	s := strings.Repeat("0123456789abcdef", 256)
	buf := make([]byte, 0, 8192)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		buf = String(buf[:0], s)
	}
}

func TestIntObject(t *testing.T) {
	type two struct {
		A int64 `json:"a-b"`
		B int64 `json:"<c>"`
	}
	same(t, "object", IntObject(nil, IntMember{"a-b", -3}, IntMember{"<c>", 1 << 40}), two{-3, 1 << 40})
	same(t, "empty", IntObject(nil), struct{}{})
}
