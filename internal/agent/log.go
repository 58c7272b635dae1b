package agent

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/tsm"
)

// DefaultLogPath is where dstack keeps its runtime event log.
const DefaultLogPath = "/run/log/dstack/runtime_events.log"

// MaxLogLine bounds one line of the runtime event log.
const MaxLogLine = 1 << 20

// ErrLog means the runtime event log is unreadable or disagrees with
// RTMR3.
var ErrLog = errors.New("agent: runtime event log")

// RTMRReader reads a runtime measurement register; tsm.Sysfs implements
// it.
type RTMRReader interface {
	ReadRTMR(index int) ([48]byte, error)
}

// rtmrSnapshot is what tdsim.Sim offers instead of RTMRReader.
type rtmrSnapshot interface {
	RTMRs() eventlog.RTMRs
}

// Log is a dstack runtime event log: a file of JSON lines, one
// eventlog.Event each (dstack.md §2.2 shape: imr 3, event_type
// 0x08000001, digest, event, event_payload hex, version when not 1),
// whose replay is RTMR3.
//
// Emit takes an exclusive flock on the log file, extends RTMR3 and only
// then appends the line: an event can be measured and not logged (a crash
// between the two, which Check then reports), never logged and not
// measured. Every Emit opens its own file description, so goroutines of
// one process serialize through the lock as separate processes do.
type Log struct {
	// Path is the log file.
	Path string
	// Extender extends RTMR3 (tsm.Sysfs, tdsim.Sim).
	Extender tsm.RTMRExtender
	// Version is the runtime event digest version: 0 or 1 for dstack's
	// legacy digest, 2 for the canonical JSON digest.
	Version uint32
}

func (l *Log) open(flag int, how int) (*os.File, error) {
	f, err := os.OpenFile(l.Path, flag, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLog, err)
	}
	for {
		err = syscall.Flock(int(f.Fd()), how)
		if err != syscall.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: lock %s: %v", ErrLog, l.Path, err)
	}
	return f, nil
}

// Emit measures a runtime event into RTMR3 and appends it to the log.
// It returns the event as logged, with its recomputed digest.
func (l *Log) Emit(name string, payload []byte) (eventlog.Event, error) {
	digest, err := eventlog.RuntimeDigest(name, payload, l.Version)
	if err != nil {
		return eventlog.Event{}, err
	}
	ev := eventlog.Event{
		IMR: 3, Type: eventlog.EvDstackRuntime, Digest: digest[:],
		Name: name, Payload: bytes.Clone(payload), Version: l.Version,
	}
	if l.Version == 2 {
		// dstack carries the canonical JSON preimage of V2 digests.
		if ev.Preimage, err = eventlog.RuntimePreimage(name, payload, l.Version); err != nil {
			return eventlog.Event{}, err
		}
	}
	line, err := ev.MarshalJSON()
	if err != nil {
		return eventlog.Event{}, err
	}
	line = append(line, '\n')
	f, err := l.open(os.O_WRONLY|os.O_APPEND|os.O_CREATE, syscall.LOCK_EX)
	if err != nil {
		return eventlog.Event{}, err
	}
	defer f.Close() // closing releases the lock
	if err := l.Extender.ExtendRTMR(3, digest); err != nil {
		return eventlog.Event{}, fmt.Errorf("agent: extend RTMR3 with %q: %w", name, err)
	}
	if _, err := f.Write(line); err != nil {
		return eventlog.Event{}, fmt.Errorf("%w: RTMR3 extended with %q but not logged: %v", ErrLog, name, err)
	}
	if err := f.Sync(); err != nil {
		return eventlog.Event{}, fmt.Errorf("%w: RTMR3 extended with %q but not synced: %v", ErrLog, name, err)
	}
	return ev, nil
}

// Events returns the logged events in order. A missing log is empty.
func (l *Log) Events() ([]eventlog.Event, error) {
	f, err := l.open(os.O_RDONLY|os.O_CREATE, syscall.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readEvents(f)
}

func readEvents(f *os.File) ([]eventlog.Event, error) {
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 4096), MaxLogLine)
	var evs []eventlog.Event
	for n := 1; sc.Scan(); n++ {
		if len(bytes.TrimSpace(sc.Bytes())) == 0 {
			continue
		}
		ev, err := eventlog.ParseEvent(bytes.Clone(sc.Bytes()))
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrLog, n, err)
		}
		if !ev.IsRuntime() || ev.IMR != 3 {
			return nil, fmt.Errorf("%w: line %d: not a runtime event of RTMR3", ErrLog, n)
		}
		if err := ev.CheckDigest(); err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrLog, n, err)
		}
		evs = append(evs, *ev)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLog, err)
	}
	return evs, nil
}

// Check replays the log and compares the result with RTMR3, read under
// the log's lock so that no Emit runs in between. It needs an Extender
// that can read registers (tsm.Sysfs, tdsim.Sim); otherwise it returns
// an error wrapping errors.ErrUnsupported. A mismatch wraps ErrLog.
func (l *Log) Check() ([]eventlog.Event, error) {
	f, err := l.open(os.O_RDONLY|os.O_CREATE, syscall.LOCK_SH)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	evs, err := readEvents(f)
	if err != nil {
		return nil, err
	}
	var rtmr3 [48]byte
	switch r := l.Extender.(type) {
	case RTMRReader:
		if rtmr3, err = r.ReadRTMR(3); err != nil {
			return nil, fmt.Errorf("agent: read RTMR3: %w", err)
		}
	case rtmrSnapshot:
		rtmr3 = r.RTMRs()[3]
	default:
		return nil, fmt.Errorf("agent: cannot read RTMR3 from %T: %w", l.Extender, errors.ErrUnsupported)
	}
	replay, err := eventlog.ReplayRTMR(evs, 3)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrLog, err)
	}
	if replay != rtmr3 {
		return nil, fmt.Errorf("%w: replay of %d events gives RTMR3 %x, register holds %x", ErrLog, len(evs), replay, rtmr3)
	}
	return evs, nil
}
