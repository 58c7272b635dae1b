package cli

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/nitro"
	"github.com/tdproof/tdproof/tpm"
	"github.com/tdproof/tdproof/verifier"
)

// nitroMediaType versions the JSON output of nitro verify.
const nitroMediaType = "application/vnd.tdproof.nitro-result.v1+json"

func (a *app) nitroCommand() *cobra.Command {
	c := &cobra.Command{
		Use:   "nitro",
		Short: "Verify AWS Nitro Enclave and NitroTPM attestation documents",
	}
	return a.group(c, a.nitroVerifyCommand())
}

type nitroFlags struct {
	at                     timeValue
	maxAge                 time.Duration
	userData, nonce        string
	trustedRoot            string
	allowDebug, requireTPM bool
	crl                    crlFlags
}

type nitroOutput struct {
	MediaType      string            `json:"media_type"`
	Verified       bool              `json:"verified"`
	AWSRoot        bool              `json:"aws_root"`
	TrustedRootSHA string            `json:"trusted_root_sha256"`
	TEEVariant     string            `json:"tee_variant,omitempty"`
	Kind           nitro.Kind        `json:"kind,omitempty"`
	ModuleID       string            `json:"module_id,omitempty"`
	Timestamp      string            `json:"timestamp,omitempty"`
	VerifiedAt     string            `json:"verified_at,omitempty"`
	Debug          bool              `json:"debug"`
	PCRs           map[string]string `json:"pcrs,omitempty"`
	UserData       string            `json:"user_data,omitempty"`
	Nonce          string            `json:"nonce,omitempty"`
	PublicKey      string            `json:"public_key,omitempty"`
	Chain          []string          `json:"chain,omitempty"`
	Error          *errorJSON        `json:"error,omitempty"`
}

func (a *app) nitroVerifyCommand() *cobra.Command {
	f := &nitroFlags{}
	c := &cobra.Command{
		Use:   "verify DOC [--at TIME]",
		Short: "Verify an NSM or NitroTPM attestation document",
		Long: `Verify an AWS Nitro attestation document: a COSE_Sign1 (ES384) whose payload is the
NSM document of a Nitro Enclave (pcrs) or the NitroTPM document of an EC2 instance
(nitrotpm_pcrs). DOC holds exactly the COSE_Sign1 (binary, tag 18 optional, or hex);
bytes before or after it are malformed (exit 3).

Checks: ES384 only; digest SHA384; every PCR 48 bytes; the timestamp no more than
--max-age before and 5 minutes after the verification time; the signing certificate
chained through cabundle[1:] to the pinned AWS Nitro Enclaves Root-G1, every certificate
valid at the verification time; the signature over the exact signed bytes (exit 4 on any
of these). A debug enclave (PCR0, PCR1 and PCR2 all zero) is rejected (exit 5) unless
--allow-debug-unsafe. Documents expire within hours: verify a stored one with --at.`,
		Example: `  tdproof nitro verify nsm.cose
  tdproof nitro verify nsm.cose --at 2025-12-25T16:04:19Z --user-data e3b0c442… --format json`,
		Annotations: map[string]string{"exit_codes": exitCodesHelp},
		Args:        exactArgs("DOC"),
		RunE: func(cmd *cobra.Command, args []string) error {
			a.ran = true
			return a.runNitroVerify(cmd, args[0], f)
		},
	}
	fl := c.Flags()
	fl.Var(&f.at, "at", "verification `TIME`: RFC 3339 or unix seconds (default now)")
	fl.DurationVar(&f.maxAge, "max-age", nitro.DefaultMaxAge, "how old the document timestamp may be at the verification time")
	fl.StringVar(&f.userData, "user-data", "", "expected user_data as `HEX` (exact bytes)")
	fl.StringVar(&f.nonce, "nonce", "", "expected nonce as `HEX` (exact bytes)")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "trust the certificate in `FILE` instead of the AWS Nitro Enclaves Root-G1")
	fl.BoolVar(&f.allowDebug, "allow-debug-unsafe", false, "accept debug enclaves (PCR0-2 zero: the parent instance can read their memory)")
	fl.BoolVar(&f.requireTPM, "nitrotpm", false, "require a NitroTPM document (nitrotpm_pcrs)")
	f.crl.register(fl)
	commandLineOnly(fl, "trusted-root", "allow-debug-unsafe")
	return c
}

// readBinaryOrHex returns data as is when it does not look like hex text,
// else the decoded hex (whitespace and a 0x prefix allowed).
func readBinaryOrHex(data []byte) []byte {
	s := strings.Join(strings.Fields(string(data)), "")
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if s == "" || len(s)%2 != 0 {
		return data
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return data
	}
	return b
}

func (a *app) runNitroVerify(cmd *cobra.Command, file string, f *nitroFlags) error {
	out := &nitroOutput{MediaType: nitroMediaType, TrustedRootSHA: nitro.RootSHA256, AWSRoot: true}
	err := a.nitroVerifyInto(cmd.Context(), out, file, f)
	out.Verified = err == nil
	out.Error = newErrorJSON(err)
	if outputFormat(cmd) == formatJSON {
		if werr := writeJSON(a.stdout, out); werr != nil {
			return werr
		}
	} else if werr := printNitro(a.stdout, out, err); werr != nil {
		return werr
	}
	return err
}

func (a *app) nitroVerifyInto(ctx context.Context, out *nitroOutput, file string, f *nitroFlags) error {
	opts := nitro.Options{Time: f.at.t, MaxAge: f.maxAge, AllowDebug: f.allowDebug, Revocation: f.crl.hook(ctx, f.at.t)}
	if f.requireTPM {
		opts.Kind = nitro.KindNitroTPM
	}
	var err error
	if opts.UserData, err = flagHex("--user-data", f.userData); err != nil {
		return err
	}
	if opts.Nonce, err = flagHex("--nonce", f.nonce); err != nil {
		return err
	}
	if f.trustedRoot != "" {
		r, err := a.readTrustedRoot(f.trustedRoot)
		if err != nil {
			return err
		}
		opts.Root = r
		sum := sha256.Sum256(r.Raw)
		out.TrustedRootSHA = hex.EncodeToString(sum[:])
		out.AWSRoot = out.TrustedRootSHA == nitro.RootSHA256
	}
	data, err := a.readInput("attestation document", file)
	if err != nil {
		return err
	}
	d, err := nitro.Parse(readBinaryOrHex(data))
	if err != nil {
		return err
	}
	out.Kind, out.ModuleID, out.Debug = d.Kind, d.ModuleID, d.Debug()
	out.TEEVariant = "dstack-" + string(d.Kind)
	out.Timestamp = d.Timestamp().Format(time.RFC3339Nano)
	out.PCRs = make(map[string]string, len(d.PCRs))
	for i, v := range d.PCRs {
		out.PCRs[fmt.Sprint(i)] = hex.EncodeToString(v)
	}
	out.UserData, out.Nonce, out.PublicKey = hex.EncodeToString(d.UserData), hex.EncodeToString(d.Nonce), hex.EncodeToString(d.PublicKey)
	res, err := d.Verify(opts)
	if err != nil {
		return err
	}
	out.VerifiedAt = res.Time.UTC().Format(time.RFC3339Nano)
	for _, c := range res.Chain {
		out.Chain = append(out.Chain, c.Subject.String())
	}
	return nil
}

func flagHex(name, v string) ([]byte, error) {
	if v == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(strings.TrimPrefix(v, "0x"))
	if err != nil {
		return nil, &usageError{err: fmt.Errorf("%s: %w", name, err)}
	}
	return b, nil
}

func printNitro(w io.Writer, out *nitroOutput, err error) error {
	p := &printer{w: w}
	if !out.AWSRoot {
		p.printf("WARNING: trusting a root other than the AWS Nitro Enclaves Root-G1 (SHA-256 %s)\n", out.TrustedRootSHA)
	}
	if err != nil {
		label := "NOT VERIFIED"
		if _, code := classify(err); code == codeRejected {
			label = "REJECTED"
		}
		p.printf("%s: %s\n", label, oneLine(err.Error()))
		return p.err
	}
	p.printf("WARNING: %s document verified; not appraised: no reference value pins its PCRs\n", out.Kind)
	p.kv(0, "tee variant", out.TEEVariant)
	p.kv(0, "module id", out.ModuleID)
	p.kv(0, "timestamp", out.Timestamp)
	p.kv(0, "verified at", out.VerifiedAt)
	p.kv(0, "user data", orNone(out.UserData))
	p.kv(0, "nonce", orNone(out.Nonce))
	p.kv(0, "public key", orNone(out.PublicKey))
	p.section("PCRs")
	keys := make([]int, 0, len(out.PCRs))
	for k := range out.PCRs {
		var i int
		fmt.Sscan(k, &i)
		keys = append(keys, i)
	}
	sort.Ints(keys)
	for _, i := range keys {
		p.kv(1, fmt.Sprintf("PCR%d", i), out.PCRs[fmt.Sprint(i)])
	}
	p.section("Chain (signing certificate first)")
	for _, c := range out.Chain {
		p.printf("  %s\n", c)
	}
	return p.err
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// classifyNitro maps nitro (and tpm) errors to exit codes; classify calls
// it before falling back to internal.
func classifyNitro(err error) (int, string, bool) {
	switch {
	case errors.Is(err, nitro.ErrMalformed):
		return exitMalformed, codeMalformed, true
	case errors.Is(err, nitro.ErrRevoked), errors.Is(err, tpm.ErrRevoked):
		return exitNotAuthentic, codeRevoked, true
	case errors.Is(err, nitro.ErrCRL), errors.Is(err, tpm.ErrCRL):
		return exitNotAuthentic, codeCollateralInvalid, true
	case errors.Is(err, dstack.ErrCertificateProfile):
		return exitNotAuthentic, codeNotAuthentic, true
	case errors.Is(err, nitro.ErrDebug), errors.Is(err, nitro.ErrKind):
		return exitRejected, codeRejected, true
	case errors.Is(err, nitro.ErrStale), errors.Is(err, nitro.ErrCertificateTime):
		return exitNotAuthentic, codeExpired, true
	case errors.Is(err, nitro.ErrFuture):
		return exitNotAuthentic, codeNotYetValid, true
	case errors.Is(err, nitro.ErrAlgorithm), errors.Is(err, nitro.ErrChain), errors.Is(err, nitro.ErrKey),
		errors.Is(err, nitro.ErrSignature), errors.Is(err, nitro.ErrUserData), errors.Is(err, nitro.ErrNonce),
		errors.Is(err, nitro.ErrPublicKey), errors.Is(err, nitro.ErrPCR):
		return exitNotAuthentic, codeNotAuthentic, true
	}
	return classifyTPM(err)
}

// dstackVerifyNitro verifies dstack Nitro Enclave or NitroTPM evidence
// for dstack verify through the service's pipeline (verifier.Verifier:
// the document against the AWS root, or --trusted-root's; the tee nitro
// rules and reference values of the policy), so that the CLI accepts
// exactly what the service does. --report-data is the request's nonce:
// it must equal the document's user_data (rule report_data).
func (a *app) dstackVerifyNitro(cmd *cobra.Command, out *dstackOutput, in verifier.Evidence, f *dstackFlags, root *x509.Certificate, ap *appraisal) error {
	now := f.at.t
	if now.IsZero() {
		now = time.Now().UTC()
	}
	var extra []verifier.Option
	if root != nil {
		extra = append(extra, verifier.WithNitroRoot(root))
	}
	extra = append(extra, f.crl.verifierOptions(f.at.t)...)
	o, err := ap.verify(cmd.Context(), in, nil, nil, f.strict, now, extra...)
	if err != nil {
		return err
	}
	out.Result = o.Result
	out.Verified, out.Accepted = o.Result.Authentic, o.Result.Allow
	var verr error
	out.Verdict, out.line, verr = verdictOf(o)
	return withHints(verr, appraisalHints(o.Result, f.appraisal.policyFile == "" && f.appraisal.db == "")...)
}

// printDstackNitro prints a verified dstack Nitro result (dstack verify).
func printDstackNitro(p *printer, r *dstack.Result) {
	n := r.Nitro
	p.kv(0, "module id", n.ModuleID)
	p.kv(0, "timestamp", n.Timestamp.UTC().Format(time.RFC3339Nano))
	p.kv(0, "TCB status", orNone(r.TCBStatus))
	ai := r.AppInfo
	p.kv(0, "app id", orNone(hex.EncodeToString(ai.AppID)))
	p.kv(0, "compose hash", hex.EncodeToString(ai.ComposeHash))
	p.kv(0, "instance id", orNone(hex.EncodeToString(ai.InstanceID)))
	p.kv(0, "device id", hex.EncodeToString(ai.DeviceID)+" (SHA-256 of module_id)")
	p.kv(0, "dstack device id", hex.EncodeToString(n.DstackDeviceID))
	p.kv(0, "key provider", orNone(string(ai.KeyProviderInfo)))
	p.kv(0, "mr_system", hex.EncodeToString(ai.MRSystem))
	p.kv(0, "mr_aggregated", hex.EncodeToString(ai.MRAggregated))
	p.kv(0, "os image", hex.EncodeToString(ai.OSImageHash))
	if len(n.PCR14Replayed) > 0 {
		p.kv(0, "PCR14", hex.EncodeToString(n.PCR14Replayed)+" (replayed from the runtime events, matches)")
	}
	p.kv(0, "report data checks", strings.Join(r.ReportDataChecks, ", "))
}
