package dstack

import (
	"bytes"
	"crypto/sha512"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/measure"
	"github.com/tdproof/tdproof/quote"
)

// Options configure one verification. The zero value verifies the quote
// against the pinned Intel root at the current time, rejects DEBUG TDs and
// non-Intel TDX modules, and checks REPORTDATA only against what the
// evidence itself implies.
type Options struct {
	// Now is the verification time. If zero, time.Now() is used.
	Now time.Time
	// TrustedRoot replaces the pinned Intel SGX Root CA (see
	// dcap.Options). If nil, the Intel root is used. Ignored when
	// Verifier is set.
	TrustedRoot *x509.Certificate
	// Strict makes expired or not yet valid collateral an error (see
	// dcap.Options). Ignored when Verifier is set.
	Strict bool
	// Verifier, if not nil, verifies the quote instead of dcap.Verify, so
	// that repeat quotes reuse its caches.
	Verifier *dcap.Verifier

	// ReportData, if not nil, is the REPORTDATA the caller expects (for
	// example its nonce, zero-padded to 64 bytes, for GetQuote evidence).
	// If nil, only the bindings the evidence implies are checked.
	ReportData *[64]byte
	// MRConfigDocument is the MR_CONFIG_ID version 3 document to check
	// against when the evidence's VM configuration does not carry one. If
	// empty and the evidence carries none, a version 3 MR_CONFIG_ID is
	// reported unchecked.
	MRConfigDocument string

	// Image, if not nil, is the OS image the TD must have booted (the
	// legacy path; the CLI reads it with measure.LoadImage). Verify
	// recomputes MRTD and RTMR0–2 with measure.MeasureImage for the VM
	// configuration's memory_size, qemu_version and
	// qemu_single_pass_add_pages, and compares them with the quote. The
	// evidence must carry a vm_config. When Image is nil and the
	// vm_config carries tdx_measurement, the lite document is verified
	// instead (automatically: the material is in the evidence, and an
	// evidence that claims an image must boot it).
	Image *measure.Image
	// ImageOSHash is the os_image_hash of Image (SHA-256 of its
	// sha256sum.txt after measure.ImageDir.CheckFiles); it must equal the
	// vm_config's os_image_hash (ErrOSImageHash). Nil leaves
	// Result.OSImageHashVerified false even when the registers match.
	ImageOSHash []byte

	// GCP configures the vTPM half of dstack-gcp-tdx evidence.
	GCP GCPOptions
	// ACPI, if not nil, gives the three ACPI digests of RTMR0 computed
	// from the VM's fw_cfg tables (measure.ACPITables): RTMR0 then binds
	// the tables, and their MADT must list cpu_count CPUs. Nil takes the
	// digests from the TD's own event log (not verified: cpu_count and
	// the device topology are not bound). Used in both modes.
	ACPI *measure.ACPIDigests

	// AllowDebugUnsafe accepts TDs with the DEBUG attribute, whose memory
	// and registers the host can read. Never set it in production.
	AllowDebugUnsafe bool
	// AllowMRSignerSEAMUnsafe accepts a non-zero MRSIGNERSEAM, i.e. a TDX
	// module not signed by Intel.
	AllowMRSignerSEAMUnsafe bool
	// AllowServiceTDUnsafe accepts a non-zero MRSERVICETD (TD 1.5): a
	// service TD bound to the TD can read or change its state.
	AllowServiceTDUnsafe bool
}

// Verify verifies dstack evidence against DCAP collateral and returns the
// facts dstack-verifier reports. It performs no I/O. On error the result
// is nil. The checks, in order:
//
//  1. the quote, with dcap.Verify (or Options.Verifier): errors wrap
//     ErrQuote and the dcap error;
//  2. the TD: DEBUG (ErrDebugTD), MRSIGNERSEAM (ErrMRSignerSEAM),
//     MRSERVICETD of TD 1.5 reports (ErrServiceTD), unless allowed;
//  3. REPORTDATA against the evidence's own report data, the RA-TLS
//     certificate key, the dstack-pod payload and Options.ReportData
//     (*ReportDataError, ErrReportData, ErrCertificateBinding);
//  4. the runtime events: IMR 3, version 2 preimages (ErrPreimage), and the
//     RTMR3 replay with digests recomputed from name and payload
//     (*RTMRMismatchError, ErrRTMRMismatch); an event of another type
//     logged for IMR 3, which the replay would skip, is refused
//     (ErrEventLog);
//  5. RTMR0–2 replayed from the boot event digests when the log carries
//     boot events other than the ACPI DATA markers (ErrRTMRMismatch);
//  6. the identity before "system-ready" against MR_CONFIG_ID
//     (ErrMRConfigID);
//  7. when Options.Image is set or the vm_config carries
//     tdx_measurement: MRTD and RTMR0–2 recomputed with package measure
//     from the image or the lite document (bound to os_image_hash:
//     ErrOSImageHash) for the vm_config's machine, against the quote
//     (*MeasurementMismatchError, ErrMeasurement). Malformed or
//     unsupported image inputs wrap ErrMalformed or ErrUnsupported.
//
// TCB status is not judged: see Result.DCAP and dcap.Policy.
func Verify(ev *Evidence, c *collateral.Collateral, opts Options) (*Result, error) {
	if err := ev.usable(); err != nil {
		return nil, err
	}
	var dres *dcap.Result
	var err error
	if opts.Verifier != nil {
		dres, err = opts.Verifier.Verify(ev.Quote, c, opts.Now)
	} else {
		dres, err = dcap.Verify(ev.Quote, c, dcap.Options{TrustedRoot: opts.TrustedRoot, Now: opts.Now, Strict: opts.Strict})
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrQuote, err)
	}
	return verify(ev, opts, dres)
}

// VerifyQuoted runs every check of Verify after DCAP verification of the
// quote (steps 2–7), with dres the result of verifying ev.Quote (by
// dcap.Verify or a dcap.Verifier, against the same collateral). It lets a
// caller keep the quote's verdict when a later check fails. dres must not
// be nil.
func VerifyQuoted(ev *Evidence, dres *dcap.Result, opts Options) (*Result, error) {
	if err := ev.usable(); err != nil {
		return nil, err
	}
	if dres == nil {
		return nil, fmt.Errorf("%w: no quote verification result", ErrQuote)
	}
	return verify(ev, opts, dres)
}

// VerifyEventLog runs every check of Verify except DCAP verification of
// the quote (steps 2–6). The result has QuoteVerified false, no DCAP
// result, no TCB status and no device id.
//
// # Security
//
// Without a verified quote nothing is attested: anyone can write a quote
// body with matching registers. Use it to inspect evidence, or when the
// quote was verified separately.
func VerifyEventLog(ev *Evidence, opts Options) (*Result, error) {
	if err := ev.usable(); err != nil {
		return nil, err
	}
	return verify(ev, opts, nil)
}

func (ev *Evidence) usable() error {
	if ev == nil || ev.Quote == nil {
		return fmt.Errorf("%w: no quote", ErrMalformed)
	}
	if ev.Quote.TD == nil {
		return fmt.Errorf("%w: not a TDX quote", ErrUnsupported)
	}
	return nil
}

func verify(ev *Evidence, opts Options, dres *dcap.Result) (*Result, error) {
	td := ev.Quote.TD
	if err := checkTD(td, opts); err != nil {
		return nil, err
	}
	checks, err := checkReportData(ev, td.ReportData, opts)
	if err != nil {
		return nil, err
	}
	for i, e := range ev.Events {
		if e.IMR > 3 {
			return nil, fmt.Errorf("%w: event %d is for IMR %d", ErrEventLog, i, e.IMR)
		}
		// RTMR3 is replayed from the runtime events only: any other event
		// logged for it would be shown without being measured.
		if e.IMR == 3 && !e.IsRuntime() {
			return nil, fmt.Errorf("%w: event %d (%s) is for IMR 3 but is not a dstack runtime event", ErrEventLog, i, e.Type)
		}
	}
	infos, rtmr3, err := replayRuntime(ev.RuntimeEvents)
	if err != nil {
		return nil, err
	}
	res := &Result{
		MediaType:        MediaType,
		TEEVariant:       TEEVariant,
		EvidenceFormat:   ev.Format,
		QuoteVerified:    dres != nil,
		ReportData:       HexBytes(bytes.Clone(td.ReportData[:])),
		ReportDataChecks: checks,
		AdvisoryIDs:      []string{},
		RuntimeEvents:    infos,
		VMConfig:         ev.VMConfig,
		DCAP:             dres,
	}
	res.RTMRs[3] = RTMRReplay{Quoted: clone48(td.RTMRs[3]), Replayed: clone48(rtmr3), Events: len(infos)}
	if rtmr3 != td.RTMRs[3] {
		return nil, &RTMRMismatchError{Index: 3, Quoted: td.RTMRs[3], Replayed: rtmr3}
	}
	res.RTMRs[3].Verified = true
	if err := replayBoot(ev.Events, td, &res.RTMRs); err != nil {
		return nil, err
	}

	id := ReadIdentity(ev.RuntimeEvents)
	for i := len(infos) - len(id.Ignored); i < len(infos); i++ {
		infos[i].IgnoredForIdentity = true
	}
	mc, err := ParseMRConfigID(td.MRConfigID)
	if err != nil {
		return nil, err
	}
	doc := opts.MRConfigDocument
	if doc == "" && ev.VMConfig != nil {
		doc = ev.VMConfig.MRConfig
	}
	if err := mc.Check(id, doc); err != nil {
		return nil, err
	}
	res.Identity = id
	res.MRConfigID = mc
	if res.Measurement, res.OSImageHashVerified, err = checkMeasurement(ev, td, opts); err != nil {
		return nil, err
	}
	res.ACPITablesVerified = res.Measurement != nil && res.Measurement.Match && res.Measurement.ACPISource == ACPIFromTables
	res.EventLogVerified = true
	if len(id.KeyProviderInfo) != 0 {
		if kp, err := ParseKeyProvider(id.KeyProviderInfo); err == nil {
			res.KeyProvider = kp
		}
	}

	ms := MRSystem(td, id.KeyProviderInfo)
	ma := MRAggregated(td, rtmr3)
	app := AppInfo{
		AppID:            id.AppID,
		ComposeHash:      id.ComposeHash,
		InstanceID:       id.InstanceID,
		MRSystem:         ms[:],
		MRAggregated:     ma[:],
		KeyProviderInfo:  id.KeyProviderInfo,
		InitScriptHashes: id.InitScriptHashes,
		MRTD:             clone48(td.MRTD),
		RTMR0:            clone48(td.RTMRs[0]),
		RTMR1:            clone48(td.RTMRs[1]),
		RTMR2:            clone48(td.RTMRs[2]),
		RTMR3:            clone48(td.RTMRs[3]),
	}
	if ev.VMConfig != nil {
		app.OSImageHash = ev.VMConfig.OSImageHash
	}
	if dres != nil {
		res.TCBStatus = dres.Status.String()
		if dres.AdvisoryIDs != nil {
			res.AdvisoryIDs = dres.AdvisoryIDs
		}
		if ppid, err := hex.DecodeString(dres.PPID); err == nil {
			app.DeviceID = DeviceID(ppid)
		}
	}
	res.AppInfo = app
	res.BootInfo = BootInfo{
		TEEVariant:      TEEVariant,
		MRAggregated:    app.MRAggregated,
		OSImageHash:     app.OSImageHash,
		MRSystem:        app.MRSystem,
		AppID:           app.AppID,
		ComposeHash:     app.ComposeHash,
		InstanceID:      app.InstanceID,
		DeviceID:        app.DeviceID,
		KeyProviderInfo: app.KeyProviderInfo,
		TCBStatus:       res.TCBStatus,
		AdvisoryIDs:     res.AdvisoryIDs,
	}
	if ev.Attestation != nil && ev.Attestation.Platform == PlatformGCPTDX {
		if err := checkGCP(ev, res, opts); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func clone48(b [48]byte) HexBytes { return HexBytes(bytes.Clone(b[:])) }

func checkTD(td *quote.TDReport, opts Options) error {
	var zero [48]byte
	if td.Debug() && !opts.AllowDebugUnsafe {
		return ErrDebugTD
	}
	if td.MRSignerSEAM != zero && !opts.AllowMRSignerSEAMUnsafe {
		return fmt.Errorf("%w: %x", ErrMRSignerSEAM, td.MRSignerSEAM)
	}
	if td.TD15 && td.MRServiceTD != zero && !opts.AllowServiceTDUnsafe {
		return fmt.Errorf("%w: %x", ErrServiceTD, td.MRServiceTD)
	}
	return nil
}

// PodReportData returns the report data a dstack-pod attestation binds:
// SHA-512("app-data:" ‖ payload).
func PodReportData(payload string) [64]byte {
	h := sha512.New()
	h.Write([]byte("app-data:"))
	h.Write([]byte(payload))
	return [64]byte(h.Sum(nil))
}

func checkReportData(ev *Evidence, quoted [64]byte, opts Options) ([]string, error) {
	checks := []string{}
	check := func(src string, want [64]byte) error {
		if want != quoted {
			return &ReportDataError{Source: src, Want: want, Quoted: quoted}
		}
		checks = append(checks, src)
		return nil
	}
	if ev.ReportData != nil {
		if err := check(SourceEvidence, *ev.ReportData); err != nil {
			return nil, err
		}
	}
	if ev.Certificate != nil && ev.Certificate.Certificate != nil {
		if err := check(SourceCertificate, RATLSReportData(ev.Certificate.Certificate.RawSubjectPublicKeyInfo)); err != nil {
			return nil, err
		}
	}
	if a := ev.Attestation; a != nil && a.Stack == StackDstackPod {
		if err := check(SourcePodPayload, PodReportData(a.ReportDataPayload)); err != nil {
			return nil, err
		}
	}
	if opts.ReportData != nil {
		if err := check(SourceCaller, *opts.ReportData); err != nil {
			return nil, err
		}
	}
	return checks, nil
}

// replayRuntime checks the runtime events and replays RTMR3 from digests
// recomputed from name and payload.
func replayRuntime(events []eventlog.Event) ([]RuntimeEventInfo, [48]byte, error) {
	infos := make([]RuntimeEventInfo, len(events))
	var mr [48]byte
	for i := range events {
		e := &events[i]
		if e.IMR != 3 {
			return nil, mr, fmt.Errorf("%w: runtime event %d (%q) is for IMR %d, want 3", ErrEventLog, i, e.Name, e.IMR)
		}
		if e.Version == 2 {
			if err := e.CheckDigest(); err != nil {
				return nil, mr, fmt.Errorf("%w: runtime event %d: %w", ErrPreimage, i, err)
			}
		}
		d, err := e.ReplayDigest()
		if err != nil {
			return nil, mr, fmt.Errorf("%w: runtime event %d: %w", ErrEventLog, i, err)
		}
		mr = eventlog.Extend(mr, d)
		infos[i] = RuntimeEventInfo{
			Name:                   e.Name,
			Payload:                HexBytes(bytes.Clone(e.Payload)),
			Version:                normVersion(e.Version),
			Digest:                 HexBytes(bytes.Clone(d[:])),
			SuppliedDigestMismatch: len(e.Digest) != 0 && !bytes.Equal(e.Digest, d[:]),
		}
	}
	return infos, mr, nil
}

// isACPIData reports whether e is one of the RTMR0 "ACPI DATA" events,
// the only boot events a stripped measurement log keeps.
func isACPIData(e *eventlog.Event) bool {
	if e.IMR != 0 || e.Type != eventlog.EvPlatformConfigFlags {
		return false
	}
	switch e.Name {
	case "acpi-loader", "acpi-rsdp", "acpi-tables":
		return true
	}
	return string(e.Payload) == "ACPI DATA"
}

// replayBoot replays RTMR0–2 when the log carries boot events beyond the
// ACPI DATA markers and compares them with the quote.
func replayBoot(events []eventlog.Event, td *quote.TDReport, out *[4]RTMRReplay) error {
	var counts [3]int
	present := false
	for i := range events {
		e := &events[i]
		if e.IsRuntime() || e.Type == eventlog.EvNoAction || e.IMR > 2 {
			continue
		}
		counts[e.IMR]++
		if !isACPIData(e) {
			present = true
		}
	}
	for i := range 3 {
		out[i] = RTMRReplay{Quoted: clone48(td.RTMRs[i])}
	}
	if !present {
		return nil
	}
	for i := range 3 {
		r, err := eventlog.ReplayRTMR(events, i)
		if err != nil {
			return fmt.Errorf("%w: RTMR%d: %w", ErrEventLog, i, err)
		}
		out[i].Replayed = clone48(r)
		out[i].Events = counts[i]
		if r != td.RTMRs[i] {
			return &RTMRMismatchError{Index: i, Quoted: td.RTMRs[i], Replayed: r}
		}
		out[i].Verified = true
	}
	return nil
}
