package measure_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/quote"
)

// vmConfig is the part of dstack's vm_config these tests read (the dstack
// package owns the full type).
type vmConfig struct {
	OSImageHash            string `json:"os_image_hash"`
	CPUCount               int    `json:"cpu_count"`
	MemorySize             uint64 `json:"memory_size"`
	QEMUVersion            string `json:"qemu_version"`
	QEMUSinglePassAddPages *bool  `json:"qemu_single_pass_add_pages"`
	OVMFVariant            string `json:"ovmf_variant"`
	TDXMeasurement         *struct {
		ChecksumFile []byte `json:"checksum_file"` // base64
		Measurement  []byte `json:"measurement"`   // base64
	} `json:"tdx_measurement"`
}

func (vm *vmConfig) machine() measure.Machine {
	return measure.Machine{CPUs: vm.CPUCount, MemorySize: vm.MemorySize, QEMUVersion: vm.QEMUVersion, QEMUSinglePassAddPages: vm.QEMUSinglePassAddPages}
}

func (vm *vmConfig) osImageHash(tb testing.TB) []byte {
	tb.Helper()
	return mustHex(tb, vm.OSImageHash)
}

// getQuote is a dstack GetQuote response, decoded.
type getQuote struct {
	quote  *quote.Quote
	events []eventlog.Event
	vm     vmConfig
}

func (g *getQuote) evidence() measure.Evidence {
	td := g.quote.TD
	return measure.Evidence{MRTD: td.MRTD, RTMRs: td.RTMRs, Events: g.events}
}

// loadGetQuote reads a shared dstack GetQuote JSON fixture (skipping when
// the shared data is absent).
func loadGetQuote(tb testing.TB, name string) *getQuote {
	tb.Helper()
	var raw struct {
		Quote    string `json:"quote"`
		EventLog string `json:"event_log"`
		VMConfig string `json:"vm_config"`
	}
	if err := json.Unmarshal(testvectors.ReadFile(tb, "dstack", name), &raw); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	q, err := quote.Parse(mustHex(tb, raw.Quote))
	if err != nil {
		tb.Fatalf("%s: quote: %v", name, err)
	}
	if q.TD == nil {
		tb.Fatalf("%s: not a TD quote", name)
	}
	g := &getQuote{quote: q}
	if g.events, err = eventlog.ParseJSON([]byte(raw.EventLog)); err != nil {
		tb.Fatalf("%s: event log: %v", name, err)
	}
	if err := json.Unmarshal([]byte(raw.VMConfig), &g.vm); err != nil {
		tb.Fatalf("%s: vm_config: %v", name, err)
	}
	return g
}

// expectedFile reads the fields of a *.expected.json these tests use.
type expectedFile struct {
	MRTD  string `json:"mrtd"`
	RTMR0 string `json:"rtmr0"`
	RTMR1 string `json:"rtmr1"`
	RTMR2 string `json:"rtmr2"`
	Lite  struct {
		TDHOBDigest2GiB string `json:"td_hob_digest_2GiB"`
		RTMR0Events     int    `json:"rtmr0_events"`
	} `json:"lite_measurement"`
}

func loadExpected(tb testing.TB, name string) *expectedFile {
	tb.Helper()
	var e expectedFile
	if err := json.Unmarshal(testvectors.ReadFile(tb, "dstack", name), &e); err != nil {
		tb.Fatalf("%s: %v", name, err)
	}
	return &e
}

func mustHex(tb testing.TB, s string) []byte {
	tb.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		tb.Fatalf("hex %q: %v", s, err)
	}
	return b
}

func mustDigest(tb testing.TB, s string) [48]byte {
	tb.Helper()
	b := mustHex(tb, s)
	if len(b) != 48 {
		tb.Fatalf("digest %q has %d bytes", s, len(b))
	}
	return [48]byte(b)
}

// debianEnv names the directory scripts/fetch-debian-artifacts.sh
// extracts Debian's ovmf and linux-image packages into.
const debianEnv = "TDPROOF_DEBIAN_DIR"

// debianFile returns a file of the Debian artifacts: $envFile when set
// (and envFile is not empty), else the first match of pattern under $TDPROOF_DEBIAN_DIR. It skips the
// test when neither is available.
func debianFile(tb testing.TB, envFile, pattern string) string {
	tb.Helper()
	if envFile != "" {
		if p := os.Getenv(envFile); p != "" {
			return p
		}
	}
	dir := os.Getenv(debianEnv)
	if dir == "" {
		tb.Skipf("Debian artifacts not available: set %s to the directory scripts/fetch-debian-artifacts.sh prints", debianEnv)
	}
	m, _ := filepath.Glob(filepath.Join(dir, pattern))
	if len(m) == 0 {
		tb.Skipf("no %s under %s=%s; run scripts/fetch-debian-artifacts.sh", pattern, debianEnv, dir)
	}
	return m[0]
}

func readFile(tb testing.TB, p string) []byte {
	tb.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func sha256Sum(b []byte) [32]byte { return sha256.Sum256(b) }
