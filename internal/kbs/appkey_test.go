package kbs_test

import (
	"bytes"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/kbs"
	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/kbs/protocol"
	"github.com/tdproof/tdproof/verifier"
)

const (
	appA  = "1111111111111111111111111111111111111111"
	appB  = "2222222222222222222222222222222222222222"
	inst1 = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	inst2 = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// tokenFor makes an attested session in the store, as the handshake does,
// whose token carries the given annotated-evidence claims, and returns a
// client holding its TEE key and the token.
func (e *adminEnv) tokenFor(t *testing.T, claims map[string]any) (*agent, string) {
	t.Helper()
	a := newAgent(t, e.env)
	ctx := t.Context()
	var rnd [16]byte
	_, _ = rand.Read(rnd[:])
	sid := "sess-" + hex.EncodeToString(rnd[:])
	rd := make([]byte, 64)
	_, _ = rand.Read(rd)
	raw, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	tok, tc, err := e.signer.Sign(ear.Claims{Nonce: verifier.NonceClaim(rd),
		Submods: map[string]ear.Appraisal{ear.SubmodTDX: {Status: ear.StatusAffirming, Claims: raw}}})
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := json.Marshal(a.jwk)
	if err := e.st.RecordKBSSession(ctx, store.KBSSession{ID: sid, Nonce: "n", Tee: "tdx", ExpiresAt: e.clock.Now().Add(time.Minute),
		ReportData: rd, TeePubKey: string(pub), Token: tok, TokenID: tc.ID}); err != nil {
		t.Fatal(err)
	}
	return a, tok
}

// getKey fetches a derived key with the bearer token.
func getKey(t *testing.T, a *agent, tok, path string) []byte {
	t.Helper()
	code, body := a.do(t, http.MethodGet, protocol.PathResource+"/"+path, nil, tok)
	if code != 200 {
		t.Fatalf("GET %s: %d %s", path, code, body)
	}
	k, err := protocol.DecryptResource(body, a.priv)
	if err != nil {
		t.Fatal(err)
	}
	if len(k) != 32 {
		t.Fatalf("GET %s: %d-byte key", path, len(k))
	}
	return k
}

// want computes the key independently: HKDF-SHA256 over the root with the
// documented salt and length-prefixed info.
func want(t *testing.T, root []byte, parts ...string) []byte {
	t.Helper()
	var info []byte
	for _, p := range parts {
		info = binary.BigEndian.AppendUint32(info, uint32(len(p)))
		info = append(info, p...)
	}
	k, err := hkdf.Key(sha256.New, root, []byte("tdproof-kbs-app-key-v1"), string(info), 32)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestAppKeys(t *testing.T) {
	sim := newSim(t, false)
	root := bytes.Repeat([]byte{0x42}, 32)
	forEachBackend(t, func(t *testing.T, dsn string) {
		e := newAdminEnv(t, dsn, sim, envOpts{adminToken: adminToken, appKeyRoot: root})
		a1, tokA1 := e.tokenFor(t, map[string]any{"dstack.app_id": appA, "dstack.instance_id": inst1})
		a2, tokA2 := e.tokenFor(t, map[string]any{"dstack.app_id": appA, "dstack.instance_id": inst2})
		b1, tokB1 := e.tokenFor(t, map[string]any{"dstack.app_id": appB, "dstack.instance_id": inst1})

		kA1 := getKey(t, a1, tokA1, "default/app-key/disk")
		// Known answer, computed here from the documented inputs.
		if w := want(t, root, "app-key", appA, "default", "disk"); !bytes.Equal(kA1, w) {
			t.Fatalf("app key %x, want %x", kA1, w)
		}
		// Same app, other instance: same app key.
		if k := getKey(t, a2, tokA2, "default/app-key/disk"); !bytes.Equal(k, kA1) {
			t.Fatalf("app key differs between instances of one app")
		}
		// Same app on another broker (same root): same key; nothing stored.
		e2 := e.second(t, envOpts{appKeyRoot: root})
		c := newAgent(t, e2)
		c.priv = a1.priv
		if k := getKey(t, c, tokA1, "default/app-key/disk"); !bytes.Equal(k, kA1) {
			t.Fatalf("app key differs between brokers")
		}
		if _, err := e.st.KBSResource(t.Context(), "default/app-key/disk"); err == nil {
			t.Fatalf("derived key was stored")
		}
		distinct := map[string][]byte{"A/disk": kA1}
		add := func(name string, k []byte) {
			for n, o := range distinct {
				if bytes.Equal(o, k) {
					t.Fatalf("%s and %s derive the same key", name, n)
				}
			}
			distinct[name] = k
		}
		add("B/disk", getKey(t, b1, tokB1, "default/app-key/disk"))
		add("A/other tag", getKey(t, a1, tokA1, "default/app-key/other"))
		add("A/other repo", getKey(t, a1, tokA1, "other/app-key/disk"))
		kI1 := getKey(t, a1, tokA1, "default/instance-key/disk")
		if w := want(t, root, "instance-key", appA, inst1, "default", "disk"); !bytes.Equal(kI1, w) {
			t.Fatalf("instance key %x, want %x", kI1, w)
		}
		add("A/inst1", kI1)
		add("A/inst2", getKey(t, a2, tokA2, "default/instance-key/disk"))
		add("B/inst1", getKey(t, b1, tokB1, "default/instance-key/disk"))
		// Another root, other keys.
		e3 := e.second(t, envOpts{appKeyRoot: bytes.Repeat([]byte{0x43}, 40)})
		d := newAgent(t, e3)
		d.priv = a1.priv
		add("A/disk other root", getKey(t, d, tokA1, "default/app-key/disk"))
	})
}

func TestAppKeyRefusals(t *testing.T) {
	sim := newSim(t, false)
	root := bytes.Repeat([]byte{0x42}, 32)
	forEachBackend(t, func(t *testing.T, dsn string) {
		e := newAdminEnv(t, dsn, sim, envOpts{adminToken: adminToken, appKeyRoot: root})
		a, tok := e.tokenFor(t, map[string]any{"dstack.app_id": appA, "dstack.instance_id": inst1})
		noID, tokNoID := e.tokenFor(t, map[string]any{"tdx.quote.body.mr_td": "00"})
		noInst, tokNoInst := e.tokenFor(t, map[string]any{"dstack.app_id": appA})
		badID, tokBadID := e.tokenFor(t, map[string]any{"dstack.app_id": 7})
		get := func(a *agent, tok, path string) (int, []byte) {
			return a.do(t, http.MethodGet, protocol.PathResource+"/"+path, nil, tok)
		}

		code, body := get(noID, tokNoID, "default/app-key/disk")
		wantProblem(t, "no app_id", code, body, protocol.ProblemPolicyDeny)
		code, body = get(badID, tokBadID, "default/app-key/disk")
		wantProblem(t, "app_id not a string", code, body, protocol.ProblemPolicyDeny)
		getKey(t, noInst, tokNoInst, "default/app-key/disk")
		code, body = get(noInst, tokNoInst, "default/instance-key/disk")
		wantProblem(t, "no instance_id", code, body, protocol.ProblemPolicyDeny)

		// Without a root: not enabled.
		off := e.second(t, envOpts{})
		o := newAgent(t, off)
		o.priv = a.priv
		code, body = get(o, tok, "default/app-key/disk")
		wantProblem(t, "no root", code, body, protocol.ProblemPluginNotFound)

		// The resource policy applies first.
		if _, err := e.b.SetResourcePolicy(t.Context(), denyAll); err != nil {
			t.Fatal(err)
		}
		code, body = get(a, tok, "default/app-key/disk")
		wantProblem(t, "deny policy", code, body, protocol.ProblemPolicyDeny)
		code, body = get(o, tok, "default/app-key/disk")
		wantProblem(t, "deny policy without root", code, body, protocol.ProblemPolicyDeny)

		// Derived types cannot be stored.
		code, body = a.do(t, http.MethodPost, protocol.PathResource+"/default/instance-key/disk", []byte("k"), adminToken)
		wantProblem(t, "POST derived", code, body, protocol.ProblemInvalidRequestPath)
		code, body = a.do(t, http.MethodDelete, protocol.PathResource+"/default/app-key/disk", nil, adminToken)
		wantProblem(t, "DELETE derived", code, body, protocol.ProblemInvalidRequestPath)

		// A short root is refused.
		if _, err := kbs.New(kbs.Config{Store: e.st, Verifier: e.v, TokenKeys: e.keys, KEK: e.kek, AppKeyRoot: make([]byte, 31)}); err == nil {
			t.Fatal("New accepted a 31-byte app key root")
		}
	})
}
