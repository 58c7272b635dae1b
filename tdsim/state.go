package tdsim

import (
	"bytes"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/eventlog"
)

// A simulator state directory holds everything that makes a Sim the same
// TD in another process: the fake Intel PKI, the platform (PCK
// certificate), the attestation key and the TD configuration. RTMR3 is
// not part of it: it is the replay of the runtime events the TD emitted
// ([Sim.ReplayRuntime]).
//
// Files (all 0600, the directory 0700):
//
//	state.json            format, version, MRTD, MRCONFIGID, MROWNER, MROWNERCONFIG, debug, runtime event version, boot events
//	pki.pem               dcaptest.MarshalPKI: the four CA certificates and their keys
//	platform.json         dcaptest.MarshalPlatform: the PCK certificate, its key and spec
//	attestation-key.pem   the quoting attestation key (EC PRIVATE KEY)
//	measurement.json      Config.Measurement, when set
const (
	StateFile          = "state.json"
	PKIFile            = "pki.pem"
	PlatformFile       = "platform.json"
	AttestationKeyFile = "attestation-key.pem"
	MeasurementFile    = "measurement.json"
)

// StateFormat and StateVersion identify state.json.
const (
	StateFormat  = "tdproof-tdsim-state"
	StateVersion = 1
)

// Errors of [Load], [Sim.Save] and [Open].
var (
	// ErrNoState means the directory does not exist or is empty.
	ErrNoState = errors.New("tdsim: no simulator state")
	// ErrStateExists means Save found a state already there; it never
	// overwrites one.
	ErrStateExists = errors.New("tdsim: simulator state already exists")
	// ErrState means the directory holds something that is not a valid
	// simulator state of a supported version.
	ErrState = errors.New("tdsim: invalid simulator state")
)

type stateJSON struct {
	Format              string      `json:"format"`
	Version             int         `json:"version"`
	CreatedAt           time.Time   `json:"created_at"`
	Warning             string      `json:"warning"`
	MRTD                string      `json:"mrtd"`
	MRConfigID          string      `json:"mr_config_id"`
	MROwner             string      `json:"mr_owner"`
	MROwnerConfig       string      `json:"mr_owner_config"`
	Debug               bool        `json:"debug"`
	RuntimeEventVersion uint32      `json:"runtime_event_version"`
	BootEvents          []bootEvent `json:"boot_events"`
}

type bootEvent struct {
	IMR     uint32 `json:"imr"`
	Type    uint32 `json:"type"`
	Digest  string `json:"digest"`
	Payload string `json:"payload"`
}

const stateWarning = "SIMULATED TD: these keys forge Intel TDX evidence; never trust this root in production"

// Save writes the Sim's state to dir, which must not exist or be empty:
// it is written in a temporary directory next to dir and renamed into
// place, so another process sees all of it or nothing. An existing state
// is never overwritten ([ErrStateExists]); a non-empty directory that is
// not a state is refused. The files hold private keys and are created
// 0600 in a 0700 directory.
func (s *Sim) Save(dir string) error {
	if err := checkEmpty(dir); err != nil {
		return err
	}
	files, err := s.stateFiles()
	if err != nil {
		return err
	}
	dir = filepath.Clean(dir)
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return fmt.Errorf("tdsim: save: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return fmt.Errorf("tdsim: save: %w", err)
	}
	defer os.RemoveAll(tmp) // after a successful rename, tmp no longer exists
	for _, name := range []string{PKIFile, PlatformFile, AttestationKeyFile, MeasurementFile, StateFile} {
		b, ok := files[name]
		if !ok {
			continue
		}
		if err := writeFile(filepath.Join(tmp, name), b); err != nil {
			return fmt.Errorf("tdsim: save: %w", err)
		}
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		return fmt.Errorf("tdsim: save: %w", err)
	}
	// os.Rename does not replace a directory, even an empty one: remove
	// it first (Remove fails if it is no longer empty). Of concurrent
	// Saves of the same dir, one renames, the others fail here.
	if err := os.Remove(dir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		if _, serr := os.Stat(filepath.Join(dir, StateFile)); serr == nil {
			return fmt.Errorf("%w in %s", ErrStateExists, dir)
		}
		return fmt.Errorf("tdsim: save: %w", err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, StateFile)); serr == nil {
			return fmt.Errorf("%w in %s", ErrStateExists, dir)
		}
		return fmt.Errorf("tdsim: save: %w", err)
	}
	return nil
}

func writeFile(name string, b []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if serr := f.Sync(); err == nil {
		err = serr
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// checkEmpty fails unless dir is missing or an empty directory.
func checkEmpty(dir string) error {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("tdsim: %w", err)
	case len(ents) == 0:
		return nil
	}
	if _, err := os.Stat(filepath.Join(dir, StateFile)); err == nil {
		return fmt.Errorf("%w in %s (it is never overwritten)", ErrStateExists, dir)
	}
	return fmt.Errorf("%w: %s is not empty and holds no %s: refusing to write a simulator state into it", ErrState, dir, StateFile)
}

func (s *Sim) stateFiles() (map[string][]byte, error) {
	st := stateJSON{
		Format: StateFormat, Version: StateVersion, CreatedAt: time.Now().UTC().Truncate(time.Second), Warning: stateWarning,
		MRTD: hex.EncodeToString(s.cfg.MRTD[:]), MRConfigID: hex.EncodeToString(s.cfg.MRConfigID[:]),
		MROwner: hex.EncodeToString(s.cfg.MROwner[:]), MROwnerConfig: hex.EncodeToString(s.cfg.MROwnerConfig[:]),
		Debug: s.cfg.Debug, RuntimeEventVersion: s.cfg.RuntimeEventVersion, BootEvents: []bootEvent{},
	}
	for _, e := range s.boot {
		st.BootEvents = append(st.BootEvents, bootEvent{IMR: e.IMR, Type: uint32(e.Type), Digest: hex.EncodeToString(e.Digest), Payload: hex.EncodeToString(e.Payload)})
	}
	stateB, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("tdsim: save: %w", err)
	}
	pkiB, err := dcaptest.MarshalPKI(s.pki)
	if err != nil {
		return nil, fmt.Errorf("tdsim: save: %w", err)
	}
	platB, err := dcaptest.MarshalPlatform(s.platform)
	if err != nil {
		return nil, fmt.Errorf("tdsim: save: %w", err)
	}
	akPEM, err := dcaptest.MarshalECKey(s.ak)
	if err != nil {
		return nil, fmt.Errorf("tdsim: save: %w", err)
	}
	files := map[string][]byte{
		StateFile:          append(stateB, '\n'),
		PKIFile:            pkiB,
		PlatformFile:       append(platB, '\n'),
		AttestationKeyFile: akPEM,
	}
	if s.cfg.Measurement != nil {
		files[MeasurementFile] = slices.Clone(s.cfg.Measurement)
	}
	return files, nil
}

// Load starts the TD saved in dir by [Sim.Save]: same PKI (trust root),
// platform, attestation key and configuration; RTMR0–2 are the replay of
// the saved boot events, RTMR3 is zero. A missing or empty dir gives
// [ErrNoState]; anything else that is not a valid state of a supported
// version gives an error wrapping [ErrState] naming the file.
func Load(dir string) (*Sim, error) {
	ents, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("%w in %s: %w", ErrNoState, dir, err)
	case err != nil:
		return nil, fmt.Errorf("tdsim: %w", err)
	case len(ents) == 0:
		return nil, fmt.Errorf("%w in %s (empty directory)", ErrNoState, dir)
	}
	read := func(name string) ([]byte, error) {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrState, err)
		}
		return b, nil
	}
	b, err := read(StateFile)
	if err != nil {
		return nil, fmt.Errorf("%w (%s is not a simulator state directory)", err, dir)
	}
	var st stateJSON
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrState, filepath.Join(dir, StateFile), err)
	}
	if st.Format != StateFormat {
		return nil, fmt.Errorf("%w: %s: format %q, want %q", ErrState, filepath.Join(dir, StateFile), st.Format, StateFormat)
	}
	if st.Version != StateVersion {
		return nil, fmt.Errorf("%w: %s: version %d, this tdproof reads version %d", ErrState, filepath.Join(dir, StateFile), st.Version, StateVersion)
	}
	cfg, err := st.config()
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrState, filepath.Join(dir, StateFile), err)
	}
	if b, err = read(PKIFile); err != nil {
		return nil, err
	}
	if cfg.PKI, err = dcaptest.UnmarshalPKI(b); err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrState, filepath.Join(dir, PKIFile), err)
	}
	if b, err = read(PlatformFile); err != nil {
		return nil, err
	}
	platform, err := dcaptest.UnmarshalPlatform(cfg.PKI, b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrState, filepath.Join(dir, PlatformFile), err)
	}
	if b, err = read(AttestationKeyFile); err != nil {
		return nil, err
	}
	ak, err := dcaptest.ParseECKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrState, filepath.Join(dir, AttestationKeyFile), err)
	}
	if b, err = os.ReadFile(filepath.Join(dir, MeasurementFile)); err == nil {
		cfg.Measurement = b
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %w", ErrState, err)
	}
	cfg, rtmrs, err := checkConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrState, filepath.Join(dir, StateFile), err)
	}
	return &Sim{cfg: cfg, pki: cfg.PKI, platform: platform, ak: ak, rtmrs: rtmrs, boot: cfg.BootEvents}, nil
}

func (st *stateJSON) config() (Config, error) {
	c := Config{Debug: st.Debug, RuntimeEventVersion: st.RuntimeEventVersion, BootEvents: []eventlog.Event{}}
	for _, f := range []struct {
		name string
		v    string
		dst  *[48]byte
	}{{"mrtd", st.MRTD, &c.MRTD}, {"mr_config_id", st.MRConfigID, &c.MRConfigID}, {"mr_owner", st.MROwner, &c.MROwner}, {"mr_owner_config", st.MROwnerConfig, &c.MROwnerConfig}} {
		b, err := hex.DecodeString(f.v)
		if err != nil || len(b) != 48 {
			return Config{}, fmt.Errorf("%s %q is not 48 bytes of hex", f.name, f.v)
		}
		copy(f.dst[:], b)
	}
	if c.MRTD == ([48]byte{}) {
		return Config{}, errors.New("mrtd is zero")
	}
	for i, e := range st.BootEvents {
		d, err := hex.DecodeString(e.Digest)
		if err != nil {
			return Config{}, fmt.Errorf("boot event %d: digest: %v", i, err)
		}
		p, err := hex.DecodeString(e.Payload)
		if err != nil {
			return Config{}, fmt.Errorf("boot event %d: payload: %v", i, err)
		}
		c.BootEvents = append(c.BootEvents, eventlog.Event{IMR: e.IMR, Type: eventlog.EventType(e.Type), Digest: d, Payload: p})
	}
	return c, nil
}

// Open loads the simulator state in dir ([Load]) or, when there is none
// ([ErrNoState]), creates a TD of cfg ([New]) and saves it there
// ([Sim.Save]). cfg is used only to create the state: a loaded TD is the
// saved one whatever cfg says. created reports which happened. When two
// processes create the same state at once, one of them loads the other's.
func Open(dir string, cfg Config) (s *Sim, created bool, err error) {
	s, err = Load(dir)
	if !errors.Is(err, ErrNoState) {
		return s, false, err
	}
	if s, err = New(cfg); err != nil {
		return nil, false, err
	}
	err = s.Save(dir)
	if errors.Is(err, ErrStateExists) {
		s, err = Load(dir)
		return s, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return s, true, nil
}

// Measurement returns the Config.Measurement the TD was created with
// (saved with its state), or nil.
func (s *Sim) Measurement() []byte { return slices.Clone(s.cfg.Measurement) }

// ReplayRuntime sets RTMR3 to the replay of events from zero and records
// them as the TD's runtime events, as if the TD had emitted exactly these
// since boot: a Sim loaded in another process then quotes what the
// runtime event log it is given says. Only RTMR3 changes. Every event
// must be a dstack runtime event of IMR 3 whose digest and preimage, when
// present, match its name, payload and version; otherwise nothing
// changes.
func (s *Sim) ReplayRuntime(events []eventlog.Event) error {
	var r3 [48]byte
	rt := make([]eventlog.Event, 0, len(events))
	for i, e := range events {
		if !e.IsRuntime() || e.IMR != 3 {
			return fmt.Errorf("tdsim: runtime event %d: imr %d type %s is not a runtime event of RTMR3", i, e.IMR, e.Type)
		}
		pre, err := eventlog.RuntimePreimage(e.Name, e.Payload, e.Version)
		if err != nil {
			return fmt.Errorf("tdsim: runtime event %d: %w", i, err)
		}
		d := sha512.Sum384(pre)
		if len(e.Digest) != 0 && !bytes.Equal(e.Digest, d[:]) || e.Preimage != nil && !bytes.Equal(e.Preimage, pre) {
			return fmt.Errorf("tdsim: runtime event %d (%q): %w: digest or preimage does not match name, payload and version", i, e.Name, eventlog.ErrDigestMismatch)
		}
		r3 = eventlog.Extend(r3, d)
		e.Digest = d[:]
		e.Payload = slices.Clone(e.Payload)
		e.Preimage = slices.Clone(e.Preimage)
		rt = append(rt, e)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rtmrs[3] = r3
	s.runtime = rt
	return nil
}
