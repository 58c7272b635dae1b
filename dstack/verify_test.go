package dstack_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/eventlog"
	"github.com/tdproof/tdproof/quote"
)

// verifyQuoteReport verifies a mutation of the quote-report vector end to
// end at its verification time.
func verifyQuoteReport(t *testing.T, ev *dstack.Evidence, c *collateral.Collateral, opts dstack.Options) (*dstack.Result, error) {
	t.Helper()
	opts.Now = quoteReportTime
	res, err := dstack.Verify(ev, c, opts)
	if (res == nil) == (err == nil) {
		t.Fatalf("Verify returned result %v with error %v", res != nil, err)
	}
	return res, err
}

func wantRTMRMismatch(t *testing.T, err error, index int, quoted [48]byte) {
	t.Helper()
	if !errors.Is(err, dstack.ErrRTMRMismatch) || !errors.Is(err, dstack.ErrEventLog) {
		t.Fatalf("error %v, want ErrRTMRMismatch", err)
	}
	me, ok := errors.AsType[*dstack.RTMRMismatchError](err)
	if !ok || me.Index != index || me.Quoted != quoted || me.Replayed == quoted {
		t.Fatalf("error %#v, want RTMR%d mismatch naming quoted %x", me, index, quoted)
	}
}

// TestQuoteReportRuntimeTampering mutates the runtime events of the
// quote-report vector: every change that alters what is replayed is
// rejected with an RTMR3 mismatch naming both values.
func TestQuoteReportRuntimeTampering(t *testing.T) {
	t.Parallel()
	base := parseVector(t, "quote-report.json")
	c := quoteReportCollateral(t)
	rtmr3 := base.Quote.TD.RTMRs[3]

	t.Run("payload", func(t *testing.T) {
		for i := range base.RuntimeEvents {
			ev := cloneEvidence(base)
			p := &ev.RuntimeEvents[i].Payload
			if len(*p) == 0 {
				*p = []byte{0}
			} else {
				(*p)[len(*p)-1] ^= 1
			}
			_, err := verifyQuoteReport(t, ev, c, dstack.Options{})
			wantRTMRMismatch(t, err, 3, rtmr3)
		}
	})
	t.Run("name", func(t *testing.T) {
		ev := cloneEvidence(base)
		ev.RuntimeEvents[2].Name = "compose-hash2"
		_, err := verifyQuoteReport(t, ev, c, dstack.Options{})
		wantRTMRMismatch(t, err, 3, rtmr3)
	})
	t.Run("reorder", func(t *testing.T) {
		for i := 0; i+1 < len(base.RuntimeEvents); i++ {
			ev := cloneEvidence(base)
			ev.RuntimeEvents[i], ev.RuntimeEvents[i+1] = ev.RuntimeEvents[i+1], ev.RuntimeEvents[i]
			_, err := verifyQuoteReport(t, ev, c, dstack.Options{})
			wantRTMRMismatch(t, err, 3, rtmr3)
		}
	})
	t.Run("dropped", func(t *testing.T) {
		ev := cloneEvidence(base)
		ev.RuntimeEvents = ev.RuntimeEvents[:len(ev.RuntimeEvents)-1]
		_, err := verifyQuoteReport(t, ev, c, dstack.Options{})
		wantRTMRMismatch(t, err, 3, rtmr3)
	})
	t.Run("identity injected after system-ready", func(t *testing.T) {
		ev := cloneEvidence(base)
		ev.RuntimeEvents = append(ev.RuntimeEvents, eventlog.Event{
			IMR: 3, Type: eventlog.EvDstackRuntime, Name: "app-id", Payload: bytes.Repeat([]byte{0xee}, 20),
		})
		// Ignored for identity …
		id := dstack.ReadIdentity(ev.RuntimeEvents)
		wantHex(t, "app_id", id.AppID, "3763bc34552cf3a27ff71ad5f7a90471562a1a2d")
		if len(id.Ignored) != 2 || id.Ignored[1] != "app-id" {
			t.Errorf("ignored = %q", id.Ignored)
		}
		// … but it is not in the quote's RTMR3.
		_, err := verifyQuoteReport(t, ev, c, dstack.Options{})
		wantRTMRMismatch(t, err, 3, rtmr3)
	})
	t.Run("wrong imr", func(t *testing.T) {
		ev := cloneEvidence(base)
		ev.RuntimeEvents[0].IMR = 2
		_, err := verifyQuoteReport(t, ev, c, dstack.Options{})
		if !errors.Is(err, dstack.ErrEventLog) || errors.Is(err, dstack.ErrRTMRMismatch) {
			t.Fatalf("error %v, want ErrEventLog for the IMR", err)
		}
	})
}

// TestQuoteReportForgedDigests: supplied runtime digests are ignored and
// recomputed; the replay is unaffected and the forgery is reported.
func TestQuoteReportForgedDigests(t *testing.T) {
	t.Parallel()
	ev := cloneEvidence(parseVector(t, "quote-report.json"))
	for i := range ev.RuntimeEvents {
		ev.RuntimeEvents[i].Digest = bytes.Repeat([]byte{byte(i)}, 48)
	}
	res, err := verifyQuoteReport(t, ev, quoteReportCollateral(t), dstack.Options{})
	if err != nil {
		t.Fatalf("Verify with forged digests: %v", err)
	}
	for _, e := range res.RuntimeEvents {
		if !e.SuppliedDigestMismatch {
			t.Errorf("forged digest of %q not reported", e.Name)
		}
	}
	wantHex(t, "compose_hash", res.AppInfo.ComposeHash, "3763bc34552cf3a27ff71ad5f7a90471562a1a2df552dfc1998cba2d60da27e7")
}

// TestQuoteReportBootTampering: RTMR0–2 are replayed from the boot event
// digests and compared.
func TestQuoteReportBootTampering(t *testing.T) {
	t.Parallel()
	base := parseVector(t, "quote-report.json")
	c := quoteReportCollateral(t)
	for i, e := range base.Events {
		if e.IsRuntime() {
			continue
		}
		ev := cloneEvidence(base)
		ev.Events[i].Digest[0] ^= 1
		_, err := verifyQuoteReport(t, ev, c, dstack.Options{})
		wantRTMRMismatch(t, err, int(e.IMR), base.Quote.TD.RTMRs[e.IMR])
	}
	// A boot digest of the wrong size is malformed.
	ev := cloneEvidence(base)
	ev.Events[0].Digest = ev.Events[0].Digest[:47]
	if _, err := verifyQuoteReport(t, ev, c, dstack.Options{}); !errors.Is(err, dstack.ErrEventLog) || errors.Is(err, dstack.ErrRTMRMismatch) {
		t.Fatalf("short boot digest: %v, want ErrEventLog", err)
	}
	// Boot payloads are not measured by the replay: changing one is not
	// detected (only digests are bound).
	ev = cloneEvidence(base)
	ev.Events[0].Payload[0] ^= 1
	if _, err := verifyQuoteReport(t, ev, c, dstack.Options{}); err != nil {
		t.Fatalf("boot payload change: %v", err)
	}
}

func TestQuoteReportReportData(t *testing.T) {
	t.Parallel()
	base := parseVector(t, "quote-report.json")
	c := quoteReportCollateral(t)
	quoted := base.Quote.TD.ReportData

	t.Run("caller match", func(t *testing.T) {
		rd := quoted
		res, err := verifyQuoteReport(t, base, c, dstack.Options{ReportData: &rd})
		if err != nil || len(res.ReportDataChecks) != 2 || res.ReportDataChecks[1] != dstack.SourceCaller {
			t.Fatalf("Verify = %v, checks %v", err, res)
		}
	})
	t.Run("caller mismatch", func(t *testing.T) {
		var rd [64]byte
		copy(rd[:], "expected nonce")
		_, err := verifyQuoteReport(t, base, c, dstack.Options{ReportData: &rd})
		re, ok := errors.AsType[*dstack.ReportDataError](err)
		if !errors.Is(err, dstack.ErrReportData) || !ok || re.Source != dstack.SourceCaller || re.Want != rd || re.Quoted != quoted {
			t.Fatalf("error %v, want ReportDataError from the caller", err)
		}
	})
	t.Run("evidence mismatch", func(t *testing.T) {
		ev := cloneEvidence(base)
		rd := *ev.ReportData
		rd[63] ^= 1
		ev.ReportData = &rd
		_, err := verifyQuoteReport(t, ev, c, dstack.Options{})
		if re, ok := errors.AsType[*dstack.ReportDataError](err); !ok || re.Source != dstack.SourceEvidence {
			t.Fatalf("error %v, want ReportDataError from the evidence", err)
		}
	})
	t.Run("quote report data changed", func(t *testing.T) {
		raw := bytes.Clone(base.Quote.Raw)
		raw[quote.HeaderSize+520] ^= 1
		q, err := quote.Parse(raw)
		if err != nil {
			t.Fatal(err)
		}
		ev := cloneEvidence(base)
		ev.Quote = q
		ev.ReportData = nil
		_, err = verifyQuoteReport(t, ev, c, dstack.Options{})
		if !errors.Is(err, dstack.ErrQuote) || !errors.Is(err, dcap.ErrQuoteSignature) {
			t.Fatalf("error %v, want ErrQuote wrapping dcap.ErrQuoteSignature", err)
		}
	})
}

func TestQuoteReportWrongTime(t *testing.T) {
	t.Parallel()
	ev := parseVector(t, "quote-report.json")
	_, err := dstack.Verify(ev, quoteReportCollateral(t), dstack.Options{Now: quoteReportTime.AddDate(5, 0, 0), Strict: true})
	if !errors.Is(err, dstack.ErrQuote) || !errors.Is(err, dcap.ErrExpired) {
		t.Fatalf("Verify 5 years later (strict) = %v, want ErrQuote wrapping dcap.ErrExpired", err)
	}
}

// TestSignedSynthetic verifies dcaptest-signed quotes whose RTMR3 is the
// replay of synthetic events, including a version 2 event.
func TestSignedSynthetic(t *testing.T) {
	t.Parallel()
	events := syntheticEvents()
	s := newSigned(t, dcaptest.TDXQuoteV4, events, [64]byte{1, 2, 3}, nil)
	ev, err := dstack.ParseEvidence(getQuoteJSON(t, s.quote.Raw, events, `{"os_image_hash":"0011"}`))
	if err != nil {
		t.Fatal(err)
	}
	res, err := dstack.Verify(ev, s.collateral, s.options())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.TCBStatus != "UpToDate" || len(res.AppInfo.DeviceID) != 32 || res.Identity.AppID[0] != 0xc0 || len(res.Identity.InitScriptHashes) != 1 {
		t.Errorf("result %+v", res)
	}
	if res.RuntimeEvents[3].Version != 2 || !res.RuntimeEvents[8].IgnoredForIdentity {
		t.Errorf("runtime events %+v", res.RuntimeEvents)
	}
	wantHex(t, "os_image_hash", res.AppInfo.OSImageHash, "0011")

	t.Run("v2 preimage mismatch", func(t *testing.T) {
		bad := cloneEvents(events)
		bad[3].Preimage[len(bad[3].Preimage)-2] ^= 1
		ev, err := dstack.ParseEvidence(getQuoteJSON(t, s.quote.Raw, bad, ""))
		if err != nil {
			t.Fatal(err)
		}
		_, err = dstack.Verify(ev, s.collateral, s.options())
		if !errors.Is(err, dstack.ErrPreimage) || !errors.Is(err, eventlog.ErrDigestMismatch) {
			t.Fatalf("error %v, want ErrPreimage", err)
		}
	})
	t.Run("v2 preimage missing", func(t *testing.T) {
		bad := cloneEvents(events)
		bad[3].Preimage = nil
		ev, err := dstack.ParseEvidence(getQuoteJSON(t, s.quote.Raw, bad, ""))
		if err != nil {
			t.Fatal(err)
		}
		if _, err = dstack.Verify(ev, s.collateral, s.options()); !errors.Is(err, dstack.ErrPreimage) {
			t.Fatalf("error %v, want ErrPreimage", err)
		}
	})
	t.Run("v2 digest does not match preimage", func(t *testing.T) {
		bad := cloneEvents(events)
		bad[3].Digest[0] ^= 1
		ev, err := dstack.ParseEvidence(getQuoteJSON(t, s.quote.Raw, bad, ""))
		if err != nil {
			t.Fatal(err)
		}
		if _, err = dstack.Verify(ev, s.collateral, s.options()); !errors.Is(err, dstack.ErrPreimage) {
			t.Fatalf("error %v, want ErrPreimage", err)
		}
	})
	// A firmware event logged for RTMR3 is not replayed (RTMR3 is the
	// runtime events'), so it must not be accepted beside them: here
	// another app's compose hash as an EV_EVENT_TAG.
	t.Run("non-runtime event for IMR 3", func(t *testing.T) {
		tag := runtimeEvent("compose-hash", bytes.Repeat([]byte{0xbb}, 32), 0)
		d, err := tag.ReplayDigest()
		if err != nil {
			t.Fatal(err)
		}
		tag.Type, tag.Digest = eventlog.EvEventTag, d[:]
		for _, at := range []int{0, 3, len(events)} {
			bad := slices.Insert(cloneEvents(events), at, tag)
			ev, err := dstack.ParseEvidence(getQuoteJSON(t, s.quote.Raw, bad, ""))
			if err != nil {
				t.Fatal(err)
			}
			if _, err = dstack.Verify(ev, s.collateral, s.options()); !errors.Is(err, dstack.ErrEventLog) {
				t.Fatalf("tag at %d: error %v, want ErrEventLog", at, err)
			}
			a := &dstack.Attestation{Version: 1, Stack: dstack.StackDstack, Quote: s.quote.Raw, EventLog: bad, ReportData: [64]byte{1, 2, 3}}
			for _, e := range events {
				a.RuntimeEvents = append(a.RuntimeEvents, dstack.RuntimeEvent{Name: e.Name, Payload: e.Payload, Version: e.Version})
			}
			raw, err := a.Marshal()
			if err != nil {
				t.Fatal(err)
			}
			if ev, err = dstack.ParseEvidence(raw); err != nil {
				t.Fatal(err)
			}
			if _, err = dstack.Verify(ev, s.collateral, s.options()); !errors.Is(err, dstack.ErrEventLog) {
				t.Fatalf("attestation, tag at %d: error %v, want ErrEventLog", at, err)
			}
		}
	})
	t.Run("v1 forged digest ignored", func(t *testing.T) {
		forged := cloneEvents(events)
		forged[1].Digest = bytes.Repeat([]byte{9}, 48)
		ev, err := dstack.ParseEvidence(getQuoteJSON(t, s.quote.Raw, forged, ""))
		if err != nil {
			t.Fatal(err)
		}
		res, err := dstack.Verify(ev, s.collateral, s.options())
		if err != nil || !res.RuntimeEvents[1].SuppliedDigestMismatch {
			t.Fatalf("Verify = %v; forged digest reported: %v", err, res != nil && res.RuntimeEvents[1].SuppliedDigestMismatch)
		}
	})
}

func TestTDAttributes(t *testing.T) {
	t.Parallel()
	events := syntheticEvents()
	for _, tc := range []struct {
		name   string
		kind   dcaptest.QuoteKind
		mutate func(*quote.TDReport)
		want   error
		allow  dstack.Options
	}{
		{"debug", dcaptest.TDXQuoteV4, func(td *quote.TDReport) { td.TDAttributes[0] |= 1 }, dstack.ErrDebugTD, dstack.Options{AllowDebugUnsafe: true}},
		{"mrsignerseam", dcaptest.TDXQuoteV4, func(td *quote.TDReport) { td.MRSignerSEAM[0] = 1 }, dstack.ErrMRSignerSEAM, dstack.Options{AllowMRSignerSEAMUnsafe: true}},
		{"service td", dcaptest.TDXQuoteV5TD15, func(td *quote.TDReport) { td.MRServiceTD[47] = 1 }, dstack.ErrServiceTD, dstack.Options{AllowServiceTDUnsafe: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSigned(t, tc.kind, events, [64]byte{}, tc.mutate)
			ev, err := dstack.ParseEvidence(getQuoteJSON(t, s.quote.Raw, events, ""))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := dstack.VerifyEventLog(ev, dstack.Options{}); !errors.Is(err, tc.want) || !errors.Is(err, dstack.ErrTDRejected) {
				t.Fatalf("VerifyEventLog = %v, want %v", err, tc.want)
			}
			if _, err := dstack.VerifyEventLog(ev, tc.allow); err != nil {
				t.Fatalf("VerifyEventLog(allowed) = %v", err)
			}
			if tc.name == "debug" {
				// Through DCAP as well: dcap accepts DEBUG TDs, dstack does not.
				if _, err := dstack.Verify(ev, s.collateral, s.options()); !errors.Is(err, dstack.ErrDebugTD) {
					t.Fatalf("Verify = %v, want ErrDebugTD", err)
				}
			}
		})
	}
}

func TestMRConfigIDVerify(t *testing.T) {
	t.Parallel()
	events := syntheticEvents()
	compose := events[2].Payload
	v1 := func(td *quote.TDReport) { td.MRConfigID[0] = 1; copy(td.MRConfigID[1:], compose) }
	for _, tc := range []struct {
		name   string
		mutate func(*quote.TDReport)
		want   error
		ver    int
	}{
		{"v1", v1, nil, 1},
		{"v1 other compose hash", func(td *quote.TDReport) { v1(td); td.MRConfigID[5] ^= 1 }, dstack.ErrMRConfigID, 0},
		{"v1 padding", func(td *quote.TDReport) { v1(td); td.MRConfigID[40] = 1 }, dstack.ErrMRConfigID, 0},
		{"unknown version", func(td *quote.TDReport) { td.MRConfigID[0] = 9 }, dstack.ErrMRConfigID, 0},
		{"owner only", func(td *quote.TDReport) { td.MROwner[0] = 1 }, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := newSigned(t, dcaptest.TDXQuoteV4, events, [64]byte{}, tc.mutate)
			ev, err := dstack.ParseEvidence(getQuoteJSON(t, s.quote.Raw, events, ""))
			if err != nil {
				t.Fatal(err)
			}
			res, err := dstack.Verify(ev, s.collateral, s.options())
			if !errors.Is(err, tc.want) || (err == nil) == (res == nil) {
				t.Fatalf("Verify = %v, want %v", err, tc.want)
			}
			if err != nil {
				return
			}
			if res.MRConfigID.Version != tc.ver || res.MRConfigID.Checked != (tc.ver != 0) {
				t.Errorf("MR_CONFIG_ID %+v", res.MRConfigID)
			}
			// mr_aggregated appends MR_CONFIG_ID ‖ MR_OWNER ‖ MR_OWNER_CONFIG
			// because one of them is not zero.
			td := ev.Quote.TD
			var zero [48]byte
			ma := dstack.MRAggregated(td, td.RTMRs[3])
			td2 := *td
			td2.MRConfigID, td2.MROwner, td2.MROwnerConfig = zero, zero, zero
			if !bytes.Equal(res.AppInfo.MRAggregated, ma[:]) {
				t.Errorf("mr_aggregated %x, MRAggregated %x", res.AppInfo.MRAggregated, ma)
			}
			if short := dstack.MRAggregated(&td2, td.RTMRs[3]); bytes.Equal(short[:], ma[:]) {
				t.Error("non-zero MR_CONFIG_ID/MR_OWNER not appended to mr_aggregated")
			}
		})
	}
}

// TestPodStack verifies a version 1 dstack-pod attestation, whose report
// data must be SHA-512("app-data:" ‖ payload).
func TestPodStack(t *testing.T) {
	t.Parallel()
	events := syntheticEvents()
	payload := `{"nonce":"abc"}`
	rd := dstack.PodReportData(payload)
	s := newSigned(t, dcaptest.TDXQuoteV5TD10, events, rd, nil)
	a := &dstack.Attestation{Version: 1, Stack: dstack.StackDstackPod, Quote: s.quote.Raw, EventLog: events, ReportData: rd, ReportDataPayload: payload, Config: "{}"}
	for _, e := range events {
		a.RuntimeEvents = append(a.RuntimeEvents, dstack.RuntimeEvent{Name: e.Name, Payload: e.Payload, Version: e.Version})
	}
	b, err := a.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	ev, err := dstack.ParseEvidence(b)
	if err != nil {
		t.Fatal(err)
	}
	res, err := dstack.Verify(ev, s.collateral, s.options())
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if len(res.ReportDataChecks) != 2 || res.ReportDataChecks[1] != dstack.SourcePodPayload {
		t.Errorf("checks %q", res.ReportDataChecks)
	}
	a.ReportDataPayload = `{"nonce":"abd"}`
	if ev, err = a.Evidence(); err != nil {
		t.Fatal(err)
	}
	_, err = dstack.Verify(ev, s.collateral, s.options())
	if re, ok := errors.AsType[*dstack.ReportDataError](err); !ok || re.Source != dstack.SourcePodPayload {
		t.Fatalf("Verify with another payload = %v, want dstack-pod ReportDataError", err)
	}
}

func TestVerifyRejectsNonTDX(t *testing.T) {
	t.Parallel()
	f, err := dcaptest.NewFixture(dcaptest.SGXQuoteV3, dcaptest.FixtureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	q, err := f.BuildQuote()
	if err != nil {
		t.Fatal(err)
	}
	ev := &dstack.Evidence{Quote: q.Parsed}
	if _, err := dstack.VerifyEventLog(ev, dstack.Options{}); !errors.Is(err, dstack.ErrUnsupported) {
		t.Fatalf("VerifyEventLog(SGX) = %v, want ErrUnsupported", err)
	}
	if _, err := dstack.Verify(nil, nil, dstack.Options{}); !errors.Is(err, dstack.ErrMalformed) {
		t.Fatalf("Verify(nil) = %v, want ErrMalformed", err)
	}
}
