package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/tpm"
)

// tpmMediaType versions the JSON output of tpm verify.
const tpmMediaType = "application/vnd.tdproof.tpm-result.v1+json"

func (a *app) tpmCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "tpm",
		Short: "Verify TPM 2.0 quotes (GCP vTPM)",
		Args:  unknownCommand,
		RunE: func(cmd *cobra.Command, _ []string) error {
			a.ran = true
			return &usageError{err: errors.New("missing command: tpm verify")}
		},
	}
	c.AddCommand(a.tpmVerifyCommand())
	return c
}

type tpmFlags struct {
	at                              timeValue
	eventLog, akCert, extraData     string
	trustedRoot, intermediate, tdxQ string
	ukiPCR                          int
	crl                             crlFlags
}

// tpmQuoteJSON is dstack's TpmQuote in JSON (bytes as hex).
type tpmQuoteJSON struct {
	Message   hexField `json:"message"`
	Signature hexField `json:"signature"`
	PCRValues []struct {
		Index     int      `json:"index"`
		Algorithm string   `json:"algorithm"`
		Value     hexField `json:"value"`
	} `json:"pcr_values"`
	AKCert   hexField `json:"ak_cert"`
	Platform string   `json:"platform"`
	EventLog []struct {
		PCRIndex int      `json:"pcr_index"`
		Digest   hexField `json:"digest"`
	} `json:"event_log"`
}

type hexField []byte

func (h *hexField) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

type tpmOutput struct {
	MediaType       string            `json:"media_type"`
	Verified        bool              `json:"verified"`
	GoogleRoot      bool              `json:"google_root"`
	TrustedRootSHA  string            `json:"trusted_root_sha256"`
	ExtraData       string            `json:"extra_data,omitempty"`
	Clock           uint64            `json:"clock,omitempty"`
	ResetCount      uint32            `json:"reset_count,omitempty"`
	FirmwareVersion string            `json:"firmware_version,omitempty"`
	PCRs            map[string]string `json:"pcrs,omitempty"`
	Replayed        []int             `json:"replayed_pcrs,omitempty"`
	UKIDigest       string            `json:"uki_authenticode_sha256,omitempty"`
	AKChain         []string          `json:"ak_chain,omitempty"`
	Error           *errorJSON        `json:"error,omitempty"`
}

func (a *app) tpmVerifyCommand() *cobra.Command {
	f := &tpmFlags{}
	c := &cobra.Command{
		Use:   "verify QUOTE [--eventlog FILE] [--ak-cert FILE]",
		Short: "Verify a TPM 2.0 quote: AK signature, AK chain, PCR digest, event log replay",
		Long: `Verify a TPM 2.0 quote as dstack's GCP TDX variant carries it. QUOTE is dstack's TpmQuote
as JSON (message, signature, pcr_values, ak_cert, event_log; bytes in hex).

Checks: the AK certificate chains to Google's EK/AK CA Root through the pinned EK/AK CA
Intermediate at the verification time; the signature (RSASSA, RSA-PSS or ECDSA P-256,
SHA-256) over the exact TPMS_ATTEST bytes; the quote selects exactly the given SHA-256
PCR values, in order, and pcrDigest is their SHA-256; every PCR with events replays to
its quoted value; with --extra-data or --tdx-quote the qualifying data must equal the
value (dstack binds SHA-256 of the TDX quote).

--eventlog FILE (a binary TCG crypto-agile log, e.g. /sys/kernel/security/tpm0/
binary_bios_measurements) replaces the quote's event_log and reports the UKI's
Authenticode hash, found by its content (a boot application loaded from a disk file)
rather than its position. --ak-cert FILE (PEM or DER) replaces ak_cert.`,
		Example: `  tdproof tpm verify tpmquote.json --eventlog binary_bios_measurements --ak-cert ak.pem
  tdproof tpm verify tpmquote.json --tdx-quote quote.bin --format json`,
		Annotations: map[string]string{"exit_codes": exitCodesHelp},
		Args:        exactArgs("QUOTE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			return a.runTPMVerify(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.Var(&f.at, "at", "verification `TIME`: RFC 3339 or unix seconds (default now)")
	fl.StringVar(&f.eventLog, "eventlog", "", "binary TCG event log `FILE` (replaces the quote's event_log)")
	fl.StringVar(&f.akCert, "ak-cert", "", "AK certificate `FILE`, PEM or DER (replaces ak_cert)")
	fl.StringVar(&f.extraData, "extra-data", "", "expected qualifying data as `HEX`")
	fl.StringVar(&f.tdxQ, "tdx-quote", "", "TDX quote `FILE` (binary or hex): expect qualifying data = its SHA-256")
	fl.IntVar(&f.ukiPCR, "uki-pcr", 2, "PCR whose events hold the UKI (2 on GCP)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "trust the certificate in `FILE` instead of Google's EK/AK CA Root")
	fl.StringVar(&f.intermediate, "intermediate", "", "intermediate certificate `FILE` (replaces the pinned Google intermediate)")
	f.crl.register(fl)
	commandLineOnly(fl, "trusted-root", "intermediate")
	return c
}

func (a *app) runTPMVerify(cmd *cobra.Command, file string, f *tpmFlags) error {
	out := &tpmOutput{MediaType: tpmMediaType, TrustedRootSHA: tpm.RootSHA256, GoogleRoot: true}
	err := a.tpmVerifyInto(cmd.Context(), out, file, f)
	out.Verified = err == nil
	out.Error = newErrorJSON(err)
	if outputFormat(cmd) == formatJSON {
		if werr := writeJSON(a.stdout, out); werr != nil {
			return werr
		}
	} else if werr := printTPM(a.stdout, out, err); werr != nil {
		return werr
	}
	return err
}

func (a *app) tpmVerifyInto(ctx context.Context, out *tpmOutput, file string, f *tpmFlags) error {
	opts := tpm.Options{Time: f.at.t, Revocation: f.crl.hook(ctx, f.at.t)}
	var err error
	if opts.ExtraData, err = flagHex("--extra-data", f.extraData); err != nil {
		return err
	}
	if f.tdxQ != "" && f.extraData != "" {
		// Either one sets the expected qualifying data: with both, one
		// expectation would be dropped silently.
		return &usageError{err: errors.New("--extra-data and --tdx-quote are exclusive")}
	}
	if f.tdxQ != "" {
		b, err := a.readInput("TDX quote", f.tdxQ)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(readBinaryOrHex(b))
		opts.ExtraData = sum[:]
	}
	if f.trustedRoot != "" {
		r, err := a.readTrustedRoot(f.trustedRoot)
		if err != nil {
			return err
		}
		opts.Root = r
		sum := sha256.Sum256(r.Raw)
		out.TrustedRootSHA = hex.EncodeToString(sum[:])
		out.GoogleRoot = out.TrustedRootSHA == tpm.RootSHA256
	}
	if f.intermediate != "" {
		c, err := a.readTrustedRoot(f.intermediate)
		if err != nil {
			return err
		}
		opts.Intermediates = append(opts.Intermediates, c)
	}
	data, err := a.readInput("TPM quote", file)
	if err != nil {
		return err
	}
	var qj tpmQuoteJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&qj); err != nil {
		return fmt.Errorf("%w: TPM quote %s: %w", errMalformedInput, file, err)
	}
	if dec.More() {
		return fmt.Errorf("%w: TPM quote %s: data after the JSON object", errMalformedInput, file)
	}
	q := &tpm.Quote{Message: qj.Message, Signature: qj.Signature, AKCert: qj.AKCert}
	for _, v := range qj.PCRValues {
		if !strings.EqualFold(v.Algorithm, "sha256") {
			return fmt.Errorf("%w: PCR%d algorithm %q, want sha256", tpm.ErrPCRSelection, v.Index, v.Algorithm)
		}
		q.PCRs = append(q.PCRs, tpm.PCRValue{Index: v.Index, Value: v.Value})
	}
	for _, e := range qj.EventLog {
		q.Events = append(q.Events, tpm.Event{PCR: e.PCRIndex, Digest: e.Digest})
	}
	if f.akCert != "" {
		c, err := a.readTrustedRoot(f.akCert)
		if err != nil {
			return err
		}
		q.AKCert = c.Raw
	}
	if f.eventLog != "" {
		b, err := a.readInput("event log", f.eventLog)
		if err != nil {
			return err
		}
		l, err := eventlog.ParseCCEL(b)
		if err != nil {
			return err
		}
		if q.Events, err = tpm.LogEvents(l); err != nil {
			return err
		}
		uki, err := tpm.FindUKI(l, f.ukiPCR)
		if err != nil {
			return err
		}
		out.UKIDigest = hex.EncodeToString(uki.Digest)
	}
	if a, err := tpm.ParseAttest(q.Message); err == nil {
		out.ExtraData, out.Clock, out.ResetCount = hex.EncodeToString(a.ExtraData), a.Clock, a.ResetCount
		out.FirmwareVersion = fmt.Sprintf("0x%016x", a.FirmwareVersion)
	}
	res, err := tpm.Verify(q, opts)
	if err != nil {
		return err
	}
	out.PCRs = map[string]string{}
	for i, v := range res.PCRs {
		out.PCRs[fmt.Sprint(i)] = hex.EncodeToString(v)
	}
	out.Replayed = res.Replayed
	if out.UKIDigest != "" && !slices.Contains(res.Replayed, f.ukiPCR) {
		return fmt.Errorf("%w: the UKI's PCR%d is not quoted, or has no events", tpm.ErrUKI, f.ukiPCR)
	}
	for _, c := range res.Chain {
		out.AKChain = append(out.AKChain, c.Subject.String())
	}
	return nil
}

func printTPM(w io.Writer, out *tpmOutput, err error) error {
	p := &printer{w: w}
	if !out.GoogleRoot {
		p.printf("WARNING: trusting a root other than Google's EK/AK CA Root (SHA-256 %s)\n", out.TrustedRootSHA)
	}
	if err != nil {
		p.printf("NOT VERIFIED: %s\n", oneLine(err.Error()))
		return p.err
	}
	p.printf("WARNING: TPM quote verified; not appraised: no reference value pins its PCRs\n")
	p.kv(0, "qualifying data", orNone(out.ExtraData))
	p.kv(0, "reset count", out.ResetCount)
	p.kv(0, "firmware", out.FirmwareVersion)
	p.kv(0, "replayed PCRs", fmt.Sprint(out.Replayed))
	if out.UKIDigest != "" {
		p.kv(0, "UKI authenticode", out.UKIDigest)
	}
	p.section("PCRs (SHA-256)")
	for i := 0; i < 32; i++ {
		if v, ok := out.PCRs[fmt.Sprint(i)]; ok {
			p.kv(1, fmt.Sprintf("PCR%d", i), v)
		}
	}
	p.section("AK chain (AK first)")
	for _, c := range out.AKChain {
		p.printf("  %s\n", c)
	}
	return p.err
}

// classifyTPM maps tpm errors to exit codes.
func classifyTPM(err error) (int, string, bool) {
	switch {
	case errors.Is(err, tpm.ErrMalformed), errors.Is(err, eventlog.ErrMalformed):
		return exitMalformed, codeMalformed, true
	case errors.Is(err, tpm.ErrUnsupported):
		return exitMalformed, codeUnsupported, true
	case errors.Is(err, tpm.ErrCertificateTime):
		return exitNotAuthentic, codeExpired, true
	case errors.Is(err, tpm.ErrChain), errors.Is(err, tpm.ErrSignature), errors.Is(err, tpm.ErrPCRSelection),
		errors.Is(err, tpm.ErrPCRDigest), errors.Is(err, tpm.ErrReplay), errors.Is(err, tpm.ErrExtraData), errors.Is(err, tpm.ErrUKI):
		return exitNotAuthentic, codeNotAuthentic, true
	}
	return 0, "", false
}
