package tsm_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/quote"
	"github.com/tdproof/tdproof/tsm"
)

var (
	_ tsm.Quoter         = (*tsm.ConfigFSQuoter)(nil)
	_ tsm.RTMRExtender   = tsm.Sysfs{}
	_ tsm.EventLogReader = tsm.Sysfs{}
)

// tdxFake returns a faketsm client whose report subsystem behaves like the
// tdx_guest provider: outblob is a dcaptest TDX quote over inblob. mutate,
// if set, changes each quote's REPORTDATA.
func tdxFake(t *testing.T, provider string, mutate func(*[64]byte)) configfsi.Client {
	t.Helper()
	pki, err := dcaptest.NewPKI(dcaptest.PKIOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plat, err := pki.NewPlatform(dcaptest.DefaultTDXPlatformSpec())
	if err != nil {
		t.Fatal(err)
	}
	sub := faketsm.Report611(0)
	fallback := sub.ReadAttr
	sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte(provider + "\n"), nil
		case "outblob":
			in := e.InAttrs["inblob"].Value
			spec := plat.DefaultQuoteSpec(dcaptest.TDXQuoteV4)
			copy(spec.TD.ReportData[:], in)
			if mutate != nil {
				mutate(&spec.TD.ReportData)
			}
			q, err := plat.BuildQuote(spec)
			if err != nil {
				return nil, err
			}
			return q.Raw, nil
		}
		return fallback(e, attr)
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}
}

func reportData(s string) [64]byte {
	var rd [64]byte
	copy(rd[:], s)
	return rd
}

func TestConfigFSQuote(t *testing.T) {
	q := &tsm.ConfigFSQuoter{Client: tdxFake(t, tsm.ProviderTDX, nil)}
	rd := reportData("nonce-1")
	raw, err := q.Quote(context.Background(), rd)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := quote.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	if parsed.TD == nil || parsed.TD.ReportData != rd {
		t.Fatalf("quote report data %x, want %x", parsed.TD.ReportData, rd)
	}
}

func TestConfigFSQuoteConcurrent(t *testing.T) {
	q := &tsm.ConfigFSQuoter{Client: tdxFake(t, tsm.ProviderTDX, nil)}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			rd := reportData(strings.Repeat("x", i+1))
			raw, err := q.Quote(context.Background(), rd)
			if err != nil {
				errs <- err
				return
			}
			if p, err := quote.Parse(raw); err != nil || p.TD.ReportData != rd {
				errs <- errors.New("wrong quote")
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestConfigFSQuoteWrongProvider(t *testing.T) {
	q := &tsm.ConfigFSQuoter{Client: tdxFake(t, "sev_guest", nil)}
	if _, err := q.Quote(context.Background(), reportData("n")); !errors.Is(err, tsm.ErrProvider) {
		t.Fatalf("err = %v, want ErrProvider", err)
	}
}

func TestConfigFSQuoteReportDataMismatch(t *testing.T) {
	q := &tsm.ConfigFSQuoter{Client: tdxFake(t, tsm.ProviderTDX, func(rd *[64]byte) { rd[0] ^= 1 })}
	if _, err := q.Quote(context.Background(), reportData("n")); !errors.Is(err, tsm.ErrBadQuote) {
		t.Fatalf("err = %v, want ErrBadQuote", err)
	}
}

func TestConfigFSQuoteNotAQuote(t *testing.T) {
	// The stock fake renders a text outblob: rejected unless the check is
	// skipped.
	c := &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": faketsm.Report611(0)}}
	q := &tsm.ConfigFSQuoter{Client: c, Provider: "fake"}
	if _, err := q.Quote(context.Background(), reportData("n")); !errors.Is(err, tsm.ErrBadQuote) {
		t.Fatalf("err = %v, want ErrBadQuote", err)
	}
	q.SkipQuoteCheck = true
	out, err := q.Quote(context.Background(), reportData("n"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(out, []byte("inblob: 6e00")) {
		t.Fatalf("outblob %q does not carry the inblob", out)
	}
}

func TestConfigFSQuoteCanceled(t *testing.T) {
	q := &tsm.ConfigFSQuoter{Client: tdxFake(t, tsm.ProviderTDX, nil)}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Quote(ctx, reportData("n")); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestConfigFSQuoteUnavailable(t *testing.T) {
	// A client whose report subsystem is missing, as on a kernel without
	// configfs-tsm.
	q := &tsm.ConfigFSQuoter{Client: missingClient{}}
	_, err := q.Quote(context.Background(), reportData("n"))
	var ue *tsm.UnavailableError
	if !errors.Is(err, tsm.ErrUnavailable) || !errors.As(err, &ue) || ue.Path != tsm.ReportDir {
		t.Fatalf("err = %v, want ErrUnavailable naming %s", err, tsm.ReportDir)
	}
}

func TestNewConfigFSQuoter(t *testing.T) {
	q, err := tsm.NewConfigFSQuoter()
	if _, statErr := os.Stat(tsm.ReportDir); statErr != nil {
		if !errors.Is(err, tsm.ErrUnavailable) || !strings.Contains(err.Error(), tsm.ReportDir) {
			t.Fatalf("err = %v, want ErrUnavailable naming %s", err, tsm.ReportDir)
		}
		return
	}
	if err != nil || q == nil {
		t.Fatalf("NewConfigFSQuoter on a configfs-tsm kernel: %v", err)
	}
}

type missingClient struct{}

func (missingClient) MkdirTemp(dir, _ string) (string, error) {
	return "", &os.PathError{Op: "mkdirtemp", Path: dir, Err: os.ErrNotExist}
}
func (missingClient) ReadFile(name string) ([]byte, error) {
	return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
}
func (missingClient) ReadDir(name string) ([]os.DirEntry, error) {
	return nil, &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
}
func (missingClient) WriteFile(name string, _ []byte) error {
	return &os.PathError{Op: "open", Path: name, Err: os.ErrNotExist}
}
func (missingClient) RemoveAll(string) error { return nil }

// fakeSysfs creates the tdx_guest measurement attributes and a CCEL under
// a temporary root.
func fakeSysfs(t *testing.T, ccel []byte) tsm.Sysfs {
	t.Helper()
	s := tsm.Sysfs{Root: t.TempDir()}
	for i := range 4 {
		p := s.RTMRPath(i)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, make([]byte, 48), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if ccel != nil {
		p := filepath.Join(s.Root, tsm.CCELPath)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, ccel, 0o444); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func TestExtendRTMR(t *testing.T) {
	s := fakeSysfs(t, nil)
	var d [48]byte
	for i := range d {
		d[i] = byte(i + 1)
	}
	if err := s.ExtendRTMR(3, d); err != nil {
		t.Fatal(err)
	}
	// A plain file stands in for the attribute: the write must be exactly
	// the 48 digest bytes at offset 0.
	got, err := os.ReadFile(s.RTMRPath(3))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, d[:]) {
		t.Fatalf("wrote %x, want %x", got, d)
	}
	if v, err := s.ReadRTMR(3); err != nil || v != d {
		t.Fatalf("ReadRTMR = %x, %v", v, err)
	}
	if !strings.HasSuffix(s.RTMRPath(3), "/class/misc/tdx_guest/measurements/rtmr3:sha384") {
		t.Fatalf("path %s", s.RTMRPath(3))
	}
}

func TestExtendRTMRErrors(t *testing.T) {
	s := tsm.Sysfs{Root: t.TempDir()}
	err := s.ExtendRTMR(3, [48]byte{})
	var ue *tsm.UnavailableError
	if !errors.Is(err, tsm.ErrUnavailable) || !errors.As(err, &ue) || ue.Path != s.RTMRPath(3) {
		t.Fatalf("err = %v, want ErrUnavailable naming %s", err, s.RTMRPath(3))
	}
	if !strings.Contains(err.Error(), "rtmr3:sha384") {
		t.Fatalf("error %q does not name the path", err)
	}
	if _, err := s.ReadRTMR(3); !errors.Is(err, tsm.ErrUnavailable) {
		t.Fatalf("ReadRTMR err = %v", err)
	}
	for _, i := range []int{-1, 4} {
		if err := s.ExtendRTMR(i, [48]byte{}); !errors.Is(err, tsm.ErrRTMRIndex) {
			t.Fatalf("index %d: err = %v", i, err)
		}
	}
	// A wrong-size attribute value is reported.
	s = fakeSysfs(t, nil)
	if err := os.WriteFile(s.RTMRPath(2), []byte("short"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.ReadRTMR(2); err == nil {
		t.Fatal("ReadRTMR accepted a 5-byte value")
	}
}

func TestReadCCEL(t *testing.T) {
	want := []byte("ccel bytes\xff\xff")
	s := fakeSysfs(t, want)
	got, err := s.ReadCCEL()
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ReadCCEL = %q, %v", got, err)
	}
	s = tsm.Sysfs{Root: t.TempDir()}
	_, err = s.ReadCCEL()
	if !errors.Is(err, tsm.ErrUnavailable) || !strings.Contains(err.Error(), "firmware/acpi/tables/data/CCEL") {
		t.Fatalf("err = %v, want ErrUnavailable naming the CCEL path", err)
	}
	if !strings.HasSuffix(tsm.Sysfs{}.RTMRPath(3), "/sys/class/misc/tdx_guest/measurements/rtmr3:sha384") {
		t.Fatal("default root is not /sys")
	}
}
