package tsm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strings"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"

	"github.com/tdproof/tdproof/quote"
)

// ReportDir is the configfs-tsm report directory of a Linux guest.
var ReportDir = path.Join(configfsi.TsmPrefix, "report")

// ProviderTDX is the configfs-tsm provider name of a TDX guest.
const ProviderTDX = "tdx_guest"

// ErrProvider means configfs-tsm is served by another TEE than expected
// (for example sev_guest).
var ErrProvider = errors.New("tsm: unexpected configfs-tsm provider")

// ErrBadQuote means the kernel returned bytes that are not a TDX quote
// carrying the requested report data.
var ErrBadQuote = errors.New("tsm: kernel returned an unexpected quote")

// generationRetries bounds the retries when another process writes the
// same report entry between our write and read (report.GenerationErr).
const generationRetries = 3

// ConfigFSQuoter is a [Quoter] over configfs-tsm. It is safe for
// concurrent use: every quote uses its own report entry.
type ConfigFSQuoter struct {
	// Client reaches configfs; linuxtsm's client in a guest, faketsm's in
	// tests.
	Client configfsi.Client
	// Provider is the expected provider; "" means [ProviderTDX].
	Provider string
	// SkipQuoteCheck skips parsing the quote and comparing its REPORTDATA
	// with the request (for fake providers whose outblob is not a
	// quote).
	SkipQuoteCheck bool
}

// NewConfigFSQuoter returns a quoter on the running kernel's configfs-tsm.
// If the report directory does not exist the error wraps
// [ErrUnavailable] and names it.
func NewConfigFSQuoter() (*ConfigFSQuoter, error) {
	c, err := linuxtsm.MakeClient()
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, &UnavailableError{What: "configfs-tsm", Path: ReportDir, Err: err}
		}
		return nil, fmt.Errorf("tsm: configfs-tsm: %w", err)
	}
	return &ConfigFSQuoter{Client: c}, nil
}

// Quote writes reportData to a new report entry's inblob and returns its
// outblob. Unless SkipQuoteCheck is set, the outblob must parse as a TDX
// quote whose REPORTDATA equals reportData (else [ErrBadQuote]).
func (q *ConfigFSQuoter) Quote(ctx context.Context, reportData [64]byte) ([]byte, error) {
	want := q.Provider
	if want == "" {
		want = ProviderTDX
	}
	var resp *report.Response
	var err error
	for range generationRetries {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		resp, err = report.Get(q.Client, &report.Request{InBlob: reportData[:]})
		if report.GetGenerationErr(err) == nil {
			break
		}
	}
	if err != nil {
		// go-configfs-tsm formats some errors with %v: ask the client
		// whether the report directory exists at all.
		if _, derr := q.Client.ReadDir(ReportDir); errors.Is(err, fs.ErrNotExist) || errors.Is(derr, fs.ErrNotExist) {
			return nil, &UnavailableError{What: "configfs-tsm", Path: ReportDir, Err: err}
		}
		return nil, fmt.Errorf("tsm: configfs-tsm report: %w", err)
	}
	if got := strings.TrimSpace(resp.Provider); got != want {
		return nil, fmt.Errorf("%w: %q, want %q", ErrProvider, got, want)
	}
	if !q.SkipQuoteCheck {
		parsed, err := quote.Parse(resp.OutBlob)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadQuote, err)
		}
		if parsed.TD == nil {
			return nil, fmt.Errorf("%w: not a TDX quote", ErrBadQuote)
		}
		if !bytes.Equal(parsed.TD.ReportData[:], reportData[:]) {
			return nil, fmt.Errorf("%w: REPORTDATA differs from the request", ErrBadQuote)
		}
	}
	return resp.OutBlob, nil
}
