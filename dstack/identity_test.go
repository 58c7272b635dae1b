package dstack_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/quote"
)

func TestComposeHash(t *testing.T) {
	t.Parallel()
	compose := []byte(`{"manifest_version":2,"name":"app","runner":"docker-compose","init_script":["echo a","echo b"]}`)
	h := dstack.ComposeHash(compose)
	if h != sha256.Sum256(compose) {
		t.Fatal("compose hash is not SHA-256 of the exact bytes")
	}
	// Reformatting changes the hash: no canonicalization.
	if dstack.ComposeHash(append([]byte(" "), compose...)) == h {
		t.Error("compose hash ignores white space")
	}
	if id := dstack.DefaultAppID(h); !bytes.Equal(id[:], h[:20]) {
		t.Errorf("default app id %x", id)
	}
	hs, err := dstack.InitScriptHashes(compose)
	if err != nil || len(hs) != 2 || hs[0] != sha256.Sum256([]byte("echo a")) || hs[1] != sha256.Sum256([]byte("echo b")) {
		t.Errorf("InitScriptHashes = %x, %v", hs, err)
	}
	for in, n := range map[string]int{`{"init_script":"x"}`: 1, `{}`: 0, `{"init_script":null}`: 0} {
		if hs, err := dstack.InitScriptHashes([]byte(in)); err != nil || len(hs) != n {
			t.Errorf("InitScriptHashes(%s) = %d, %v; want %d", in, len(hs), err, n)
		}
	}
	for _, in := range []string{`{"init_script":["1","2","3","4","5","6"]}`, `{"init_script":7}`, `[`} {
		if _, err := dstack.InitScriptHashes([]byte(in)); !errors.Is(err, dstack.ErrMalformed) {
			t.Errorf("InitScriptHashes(%s) = %v, want ErrMalformed", in, err)
		}
	}
}

func TestReadIdentity(t *testing.T) {
	t.Parallel()
	ev := func(name, payload string) eventlog.Event {
		return eventlog.Event{IMR: 3, Type: eventlog.EvDstackRuntime, Name: name, Payload: []byte(payload)}
	}
	events := []eventlog.Event{
		{IMR: 0, Type: eventlog.EvSeparator, Name: "app-id", Payload: []byte("boot event, not runtime")},
		ev("system-preparing", ""),
		ev("app-id", "first"),
		ev("app-id", "second"),
		ev("compose-hash", "c"),
		ev("init-script-hash", "i1"),
		ev("gpu-policy-hash", "g"),
		ev("init-script-hash", "i2"),
		ev("instance-id", ""),
		ev("instance-id", "later"), // the first, empty one wins
		ev("os-image-hash", "o"),
		ev("key-provider", `{"name":"none","id":""}`),
		ev("storage-fs", "zfs"),
		ev("system-ready", ""),
		ev("compose-hash", "late"),
		ev("system-ready", ""),
	}
	id := dstack.ReadIdentity(events)
	if string(id.AppID) != "first" || string(id.ComposeHash) != "c" || id.InstanceID != nil || string(id.GPUPolicyHash) != "g" ||
		string(id.OSImageHashEvent) != "o" || id.StorageFS != "zfs" || string(id.KeyProviderInfo) != `{"name":"none","id":""}` || !id.SystemReady {
		t.Errorf("identity %+v", id)
	}
	if len(id.InitScriptHashes) != 2 || string(id.InitScriptHashes[1]) != "i2" {
		t.Errorf("init script hashes %q", id.InitScriptHashes)
	}
	if len(id.Events) != 13 || !slices.Equal(id.Ignored, []string{"compose-hash", "system-ready"}) {
		t.Errorf("events %q, ignored %q", id.Events, id.Ignored)
	}
	// Without system-ready every event counts, as in dstack.
	id = dstack.ReadIdentity(events[:13])
	if id.SystemReady || string(id.AppID) != "first" || len(id.Ignored) != 0 {
		t.Errorf("identity without system-ready %+v", id)
	}
	if id := dstack.ReadIdentity(nil); id.AppID != nil || id.Events == nil || id.InitScriptHashes == nil {
		t.Errorf("empty identity %+v", id)
	}
}

func TestMRSystem(t *testing.T) {
	t.Parallel()
	td := &quote.TDReport{}
	td.MRTD[0], td.RTMRs[0][0], td.RTMRs[1][0], td.RTMRs[2][0], td.RTMRs[3][0] = 1, 2, 3, 4, 5
	var buf []byte
	buf = append(buf, td.MRTD[:]...)
	for i := range 3 {
		buf = append(buf, td.RTMRs[i][:]...)
	}
	if got, want := dstack.MRSystem(td, nil), sha256.Sum256(append(bytes.Clone(buf), make([]byte, 32)...)); got != want {
		t.Errorf("mr_system without key provider = %x, want %x", got, want)
	}
	kp := []byte(`{"name":"kms","id":"00"}`)
	kph := sha256.Sum256(kp)
	if got, want := dstack.MRSystem(td, kp), sha256.Sum256(append(bytes.Clone(buf), kph[:]...)); got != want {
		t.Errorf("mr_system = %x, want %x", got, want)
	}
	if got, want := dstack.MRAggregated(td, td.RTMRs[3]), sha256.Sum256(append(bytes.Clone(buf), td.RTMRs[3][:]...)); got != want {
		t.Errorf("mr_aggregated with zero config = %x, want %x", got, want)
	}
	td.MROwnerConfig[47] = 1
	want := sha256.Sum256(slices.Concat(buf, td.RTMRs[3][:], td.MRConfigID[:], td.MROwner[:], td.MROwnerConfig[:]))
	if got := dstack.MRAggregated(td, td.RTMRs[3]); got != want {
		t.Errorf("mr_aggregated with MR_OWNER_CONFIG = %x, want %x", got, want)
	}
	if d := dstack.DeviceID(nil); d != nil {
		t.Errorf("DeviceID(nil) = %x", d)
	}
}

func TestParseMRConfigID(t *testing.T) {
	t.Parallel()
	var raw [48]byte
	m, err := dstack.ParseMRConfigID(raw)
	if err != nil || m.Version != 0 || m.Value != nil {
		t.Fatalf("zero: %+v, %v", m, err)
	}
	if err := m.Check(&dstack.Identity{}, ""); err != nil || m.Checked {
		t.Errorf("zero Check = %v, checked %v", err, m.Checked)
	}
	for _, bad := range []func(*[48]byte){
		func(r *[48]byte) { r[0] = 4 },
		func(r *[48]byte) { r[0] = 0; r[1] = 1 },
		func(r *[48]byte) { r[0] = 1; r[47] = 1 },
	} {
		raw := [48]byte{}
		bad(&raw)
		if m, err := dstack.ParseMRConfigID(raw); !errors.Is(err, dstack.ErrMRConfigID) || m != nil {
			t.Errorf("ParseMRConfigID(%x) = %v, %v", raw, m, err)
		}
	}
}

// mrConfigIdentity is an identity with every field MR_CONFIG_ID binds.
func mrConfigIdentity() *dstack.Identity {
	return &dstack.Identity{
		AppID:           bytes.Repeat([]byte{0x11}, 20),
		ComposeHash:     bytes.Repeat([]byte{0x22}, 32),
		InstanceID:      bytes.Repeat([]byte{0x44}, 20),
		KeyProviderInfo: []byte(`{"name":"kms","id":"` + hex.EncodeToString(bytes.Repeat([]byte{0x33}, 32)) + `"}`),
	}
}

func TestMRConfigIDVersion2(t *testing.T) {
	t.Parallel()
	id := mrConfigIdentity()
	// Keccak-256(compose_hash ‖ app_id ‖ 0x02 (kms) ‖ key_provider_id),
	// computed independently with golang.org/x/crypto/sha3's
	// NewLegacyKeccak256.
	const want = "7f2ca741da9d356026ab20ca640abf06198829a128817b091bbc9aec1ed97b60"
	raw := [48]byte{2}
	copy(raw[1:], unhex(t, want))
	m, err := dstack.ParseMRConfigID(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(id, ""); err != nil || !m.Checked {
		t.Fatalf("Check = %v", err)
	}
	other := mrConfigIdentity()
	other.KeyProviderInfo = []byte(`{"name":"local-sgx","id":"` + hex.EncodeToString(bytes.Repeat([]byte{0x33}, 32)) + `"}`)
	for name, id := range map[string]*dstack.Identity{
		"other kind":        other,
		"no key provider":   {AppID: id.AppID, ComposeHash: id.ComposeHash},
		"short app id":      {AppID: id.AppID[:19], ComposeHash: id.ComposeHash, KeyProviderInfo: id.KeyProviderInfo},
		"unknown provider":  {AppID: id.AppID, ComposeHash: id.ComposeHash, KeyProviderInfo: []byte(`{"name":"x","id":""}`)},
		"provider id unhex": {AppID: id.AppID, ComposeHash: id.ComposeHash, KeyProviderInfo: []byte(`{"name":"kms","id":"zz"}`)},
	} {
		if err := m.Check(id, ""); !errors.Is(err, dstack.ErrMRConfigID) || m.Checked {
			t.Errorf("%s: Check = %v", name, err)
		}
	}
}

func TestMRConfigIDVersion3(t *testing.T) {
	t.Parallel()
	id := mrConfigIdentity()
	doc := fmt.Sprintf(`{"app_id":"%x","compose_hash":"%x","instance_id":"%x","key_provider":"kms","key_provider_id":"%s","version":3}`,
		[]byte(id.AppID), []byte(id.ComposeHash), []byte(id.InstanceID), hex.EncodeToString(bytes.Repeat([]byte{0x33}, 32)))
	h := sha256.Sum256(append([]byte("dstack-mr-config-v3:\x00"), doc...))
	raw := [48]byte{3}
	copy(raw[1:], h[:])
	m, err := dstack.ParseMRConfigID(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Check(id, ""); err != nil || m.Checked {
		t.Errorf("without document: %v, checked %v; want unchecked", err, m.Checked)
	}
	if err := m.Check(id, doc); err != nil || !m.Checked {
		t.Fatalf("Check = %v", err)
	}
	if err := m.Check(id, doc+" "); !errors.Is(err, dstack.ErrMRConfigID) {
		t.Errorf("other document bytes: %v", err)
	}
	other := mrConfigIdentity()
	other.InstanceID = nil
	if err := m.Check(other, doc); !errors.Is(err, dstack.ErrMRConfigID) {
		t.Errorf("other instance id: %v", err)
	}
}

func TestParseKeyProvider(t *testing.T) {
	t.Parallel()
	kp, err := dstack.ParseKeyProvider([]byte(`{"name":"local-sgx","id":"1b7a"}`))
	if err != nil || kp.Name != "local-sgx" || kp.ID != "1b7a" {
		t.Errorf("ParseKeyProvider = %+v, %v", kp, err)
	}
	if _, err := dstack.ParseKeyProvider([]byte(`{`)); !errors.Is(err, dstack.ErrMalformed) {
		t.Errorf("ParseKeyProvider(bad) = %v", err)
	}
}
