package kbs

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/store"
)

func testCookie(t testing.TB) (key []byte, v string, ss store.KBSSession) {
	t.Helper()
	key, err := cookieKey(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	id := [sessionIDSize]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}
	ss = store.KBSSession{ID: sessionIDHex(id[:]), Nonce: "bm9uY2Ugbm9uY2Ugbm9uY2Ugbm9uY2Ugbm9uY2U=", Tee: "tdx",
		State: store.KBSSessionPending, ExpiresAt: time.Unix(1_800_000_000, 123).UTC()}
	v, err = sealCookie(key, id, ss)
	if err != nil {
		t.Fatal(err)
	}
	return key, v, ss
}

// TestCookie: a sealed session opens to itself under its key only; any
// change of one character, another key, another version, a truncation or
// an oversized value is refused.
func TestCookie(t *testing.T) {
	key, v, ss := testCookie(t)
	got, err := openCookie(key, v)
	if err != nil || got.ID != ss.ID || got.Nonce != ss.Nonce || got.Tee != ss.Tee || got.State != ss.State || !got.ExpiresAt.Equal(ss.ExpiresAt) ||
		got.Token != "" || got.ReportData != nil {
		t.Fatalf("openCookie = %+v, %v; want %+v", got, err, ss)
	}
	if !strings.HasPrefix(v, cookieVersion) || len(v) > maxCookieLen {
		t.Fatalf("cookie %q", v)
	}
	for i := range len(v) {
		for _, c := range []byte{'A', '_', '.', 'z'} {
			if v[i] == c {
				continue
			}
			m := v[:i] + string(c) + v[i+1:]
			if _, err := openCookie(key, m); err == nil {
				t.Fatalf("cookie with byte %d changed to %q opened", i, c)
			}
		}
	}
	other, _ := cookieKey(bytes.Repeat([]byte{8}, 32))
	if _, err := openCookie(other, v); err == nil {
		t.Fatal("cookie opened under another key-encryption key")
	}
	for _, bad := range []string{"", "s1.", "s1..", v[:len(v)-1], v + "A", "s2" + v[2:], strings.Repeat("A", maxCookieLen+1),
		"0123456789abcdef0123456789abcdef"} {
		if _, err := openCookie(key, bad); err == nil {
			t.Fatalf("cookie %q opened", bad)
		}
	}
	// An authentic payload that does not parse (a broker bug) is refused.
	for _, p := range [][]byte{{}, make([]byte, sessionIDSize+8), append(make([]byte, sessionIDSize+8), 3, 't', 'd', 'x'),
		append(make([]byte, sessionIDSize+8), 3, 't', 'd', 'x', 0), append(make([]byte, sessionIDSize+8), 3, 't', 'd', 'x', 1, 'n', 0)} {
		signed := cookieVersion + base64.RawURLEncoding.EncodeToString(p)
		bad := signed + "." + base64.RawURLEncoding.EncodeToString(cookieMAC(key, signed))
		if _, err := openCookie(key, bad); err == nil {
			t.Fatalf("payload %x opened", p)
		}
	}
	if _, err := sealCookie(key, [sessionIDSize]byte{}, store.KBSSession{Nonce: strings.Repeat("n", 256), Tee: "tdx"}); err == nil {
		t.Fatal("oversized nonce sealed")
	}
	// An authentic value longer than maxCookieLen is refused before its
	// MAC is computed.
	long, err := sealCookie(key, [sessionIDSize]byte{}, store.KBSSession{Nonce: strings.Repeat("n", 255), Tee: strings.Repeat("t", 255), ExpiresAt: ss.ExpiresAt})
	if err != nil || len(long) <= maxCookieLen {
		t.Fatalf("sealCookie of a long session: %d bytes, %v", len(long), err)
	}
	if _, err := openCookie(key, long); err == nil {
		t.Fatalf("cookie of %d bytes opened", len(long))
	}
}

// FuzzOpenCookie: openCookie never panics, and what it opens is what a
// sealCookie of its fields gives back.
func FuzzOpenCookie(f *testing.F) {
	key, v, _ := testCookie(f)
	f.Add(v)
	f.Add("s1.AAAA.AAAA")
	f.Fuzz(func(t *testing.T, v string) {
		ss, err := openCookie(key, v)
		if err != nil {
			return
		}
		id, err := base64.RawURLEncoding.DecodeString(v[len(cookieVersion):strings.LastIndexByte(v, '.')])
		if err != nil {
			t.Fatal(err)
		}
		again, err := sealCookie(key, [sessionIDSize]byte(id[:sessionIDSize]), ss)
		if err != nil || again != v {
			t.Fatalf("sealCookie of the opened %q = %q, %v", v, again, err)
		}
	})
}
