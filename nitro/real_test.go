package nitro_test

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/nitro"
)

// envelopeQuote returns the nsm_quote of a V0 SCALE VersionedAttestation
// of kind DstackNitroEnclave (00 02, then a two-byte compact length).
func envelopeQuote(t testing.TB, data []byte) []byte {
	t.Helper()
	if len(data) < 4 || data[0] != 0 || data[1] != 2 || data[2]&3 != 1 {
		t.Fatalf("not a V0 DstackNitroEnclave envelope: % x", data[:4])
	}
	n := int(uint16(data[2])|uint16(data[3])<<8) >> 2
	return data[4 : 4+n]
}

type realDoc struct {
	file     string
	module   string
	tsMillis int64
	osImage  string
	debug    bool
}

var realDocs = []realDoc{
	{"dstack-attest__tests__nitro_attestation.bin", "i-0827e799ec9232d44-enc019b5640fdf630d6", 1766678659346, "1894b0b29e94a9db16e88a2914f0923e52bb16c08bf3bb484df786a147e2eb79", false},
	{"nsm-qvl__tests__nitro_attestation.bin", "i-0827e799ec9232d44-enc019b55a68bd2ed4b", 1766668537578, "e0e742bd62280472ea840647754203d599cb39a7966cfed11237c1e86de9c857", false},
	{"dstack-attest__tests__nitro_attestation_dbg.bin", "i-0fd3fdaad4e904e69-enc019b54988b2d89ba", 1766650846577, "81c611f35bff79491538b2f7cf201c7597a661a5c549633541c62bdc8af1613f", true},
}

func readReal(t testing.TB, file string) []byte {
	return envelopeQuote(t, testvectors.ReadFile(t, "multitee", "dstack", file))
}

func TestRootMatchesShared(t *testing.T) {
	b := testvectors.ReadFile(t, "multitee", "dstack", "nsm-qvl__certs__AWS_NitroEnclaves_Root-G1.pem")
	_ = b
	sum := sha256.Sum256(nitro.Root().Raw)
	if hex.EncodeToString(sum[:]) != nitro.RootSHA256 {
		t.Fatalf("root fingerprint %x", sum)
	}
}

func TestRealDocuments(t *testing.T) {
	for _, rd := range realDocs {
		t.Run(rd.file, func(t *testing.T) {
			doc := readReal(t, rd.file)
			at := time.UnixMilli(rd.tsMillis)
			res, err := nitro.Verify(doc, nitro.Options{Time: at, AllowDebug: rd.debug})
			if err != nil {
				t.Fatalf("Verify at %s: %v", at, err)
			}
			if res.ModuleID != rd.module || res.Kind != nitro.KindEnclave || res.Debug() != rd.debug {
				t.Fatalf("module %q kind %s debug %v", res.ModuleID, res.Kind, res.Debug())
			}
			if len(res.Chain) != 5 || !res.Chain[len(res.Chain)-1].Equal(nitro.Root()) {
				t.Fatalf("chain length %d", len(res.Chain))
			}
			h := sha256.New()
			for i := 0; i < 3; i++ {
				h.Write(res.PCR(i))
			}
			if got := hex.EncodeToString(h.Sum(nil)); got != rd.osImage {
				t.Fatalf("SHA-256(PCR0||PCR1||PCR2) = %s, want %s", got, rd.osImage)
			}
			if len(res.UserData) != 64 || res.Nonce != nil || res.PublicKey != nil {
				t.Fatalf("user_data %d bytes, nonce %x, public_key %x", len(res.UserData), res.Nonce, res.PublicKey)
			}
			// The last moment inside the freshness window passes; one
			// millisecond later is stale.
			if _, err := nitro.Verify(doc, nitro.Options{Time: at.Add(time.Hour), AllowDebug: rd.debug}); err != nil {
				t.Fatalf("at +1h: %v", err)
			}
			if _, err := nitro.Verify(doc, nitro.Options{Time: at.Add(time.Hour + time.Millisecond), AllowDebug: rd.debug}); !errors.Is(err, nitro.ErrStale) {
				t.Fatalf("at +1h+1ms: %v, want ErrStale", err)
			}
			if _, err := nitro.Verify(doc, nitro.Options{Time: at.Add(-5*time.Minute - time.Millisecond), AllowDebug: rd.debug}); !errors.Is(err, nitro.ErrFuture) {
				t.Fatalf("at -5min-1ms: %v, want ErrFuture", err)
			}
			// Before the leaf's NotBefore (3 s before the timestamp), the
			// chain fails even within the skew window.
			if _, err := nitro.Verify(doc, nitro.Options{Time: at.Add(-time.Minute), AllowDebug: rd.debug}); !errors.Is(err, nitro.ErrCertificateTime) {
				t.Fatalf("at -1min: %v, want ErrCertificateTime", err)
			}
			// A wider freshness window cannot outlive the leaf (3 h).
			if _, err := nitro.Verify(doc, nitro.Options{Time: at.Add(4 * time.Hour), MaxAge: 24 * time.Hour, AllowDebug: rd.debug}); !errors.Is(err, nitro.ErrCertificateTime) {
				t.Fatalf("at +4h: %v, want ErrCertificateTime", err)
			}
			// Today, the document is stale.
			if _, err := nitro.Verify(doc, nitro.Options{AllowDebug: rd.debug}); !errors.Is(err, nitro.ErrStale) {
				t.Fatalf("now: %v, want ErrStale", err)
			}
			// Trailing and leading bytes.
			if _, err := nitro.Parse(append(append([]byte{}, doc...), 0)); !errors.Is(err, nitro.ErrMalformed) {
				t.Fatalf("trailing byte: %v", err)
			}
			if _, err := nitro.Parse(append([]byte{0}, doc...)); !errors.Is(err, nitro.ErrMalformed) {
				t.Fatalf("leading byte: %v", err)
			}
		})
	}
}

func TestRealDebugRefusedByDefault(t *testing.T) {
	rd := realDocs[2]
	doc := readReal(t, rd.file)
	_, err := nitro.Verify(doc, nitro.Options{Time: time.UnixMilli(rd.tsMillis)})
	if !errors.Is(err, nitro.ErrDebug) {
		t.Fatalf("debug document: %v, want ErrDebug", err)
	}
}

func TestRealUserDataBinding(t *testing.T) {
	rd := realDocs[0]
	doc := readReal(t, rd.file)
	want := make([]byte, 64)
	sum := sha256.Sum256(nil)
	copy(want, sum[:])
	at := time.UnixMilli(rd.tsMillis)
	if _, err := nitro.Verify(doc, nitro.Options{Time: at, UserData: want}); err != nil {
		t.Fatal(err)
	}
	want[63] = 1
	if _, err := nitro.Verify(doc, nitro.Options{Time: at, UserData: want}); !errors.Is(err, nitro.ErrUserData) {
		t.Fatalf("%v, want ErrUserData", err)
	}
	if _, err := nitro.Verify(doc, nitro.Options{Time: at, Nonce: []byte{1}}); !errors.Is(err, nitro.ErrNonce) {
		t.Fatalf("%v, want ErrNonce", err)
	}
	// One flipped payload byte breaks the signature (or the CBOR).
	bad := append([]byte{}, doc...)
	bad[len(bad)-200] ^= 1
	if _, err := nitro.Verify(bad, nitro.Options{Time: at}); err == nil {
		t.Fatal("tampered document verified")
	}
	// The last signature byte.
	bad = append([]byte{}, doc...)
	bad[len(bad)-1] ^= 1
	if _, err := nitro.Verify(bad, nitro.Options{Time: at}); !errors.Is(err, nitro.ErrSignature) {
		t.Fatalf("%v, want ErrSignature", err)
	}
}

var _ = os.ReadFile
