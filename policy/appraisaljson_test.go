package policy

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"
)

func checkAppraisalJSON(t *testing.T, a *Appraisal) {
	t.Helper()
	got, err := a.AppendJSON(nil)
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.Marshal(a)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Errorf("AppendJSON differs from json.Marshal:\n got %s\nwant %s", got, want)
	}
}

// TestAppraisalAppendJSON checks the hand-written encoder against
// encoding/json for every field set, unset, nil and empty.
func TestAppraisalAppendJSON(t *testing.T) {
	checkAppraisalJSON(t, nil)
	checkAppraisalJSON(t, &Appraisal{})
	checkAppraisalJSON(t, &Appraisal{Failed: []Violation{}, Warnings: []Violation{}, Comparisons: []Comparison{}})
	full := &Appraisal{
		MediaType: "application/vnd.tdproof.appraisal.v1+json", Allow: true,
		Failed:   []Violation{{Rule: "r"}, {Rule: "tcb", Claim: "tdx.tcb_status", Expected: "<UpToDate>", Actual: "OutOfDate & more"}},
		Warnings: []Violation{{Rule: "unpinned", Actual: "\u2028\xff"}},
		Comparisons: []Comparison{
			{Name: "tdx.mr_td", Claim: "tdx.quote.body.mr_td", Expected: []string{"aa", "bb"}, Actual: "aa", Outcome: Match},
			{Name: "x", Claim: "y", Outcome: NoReferenceValue},
			{Name: "x", Claim: "y", Expected: []string{}, Actual: absent + " (claim missing)", Outcome: ClaimMissing},
		},
		PolicyID: "default", PolicyVersion: "builtin-3",
		TrustVector: TrustVector{InstanceIdentity: 2, Configuration: -1, Executables: 96, FileSystem: 0, Hardware: 97, RuntimeOpaque: 127, StorageOpaque: -128, SourcedData: 32},
		Time:        time.Unix(1700000000, 5).In(time.FixedZone("x", -7200)),
	}
	// Every field set, so that a field added to Appraisal, Violation or
	// Comparison and not to AppendJSON fails here.
	for _, v := range []any{*full, full.Failed[1], full.Comparisons[0]} {
		rv := reflect.ValueOf(v)
		for i := range rv.NumField() {
			if rv.Field(i).IsZero() {
				t.Errorf("%s.%s is not set by this test", rv.Type().Name(), rv.Type().Field(i).Name)
			}
		}
	}
	checkAppraisalJSON(t, full)
	if _, err := (&Appraisal{Time: time.Date(10001, 1, 1, 0, 0, 0, 0, time.UTC)}).AppendJSON(nil); err == nil {
		t.Error("a time json.Marshal refuses was encoded")
	}
}

func FuzzAppraisalAppendJSON(f *testing.F) {
	f.Add("default", "tdx.mr_td", "<a&b>", true, int8(2), int64(1700000000))
	f.Fuzz(func(t *testing.T, s1, s2, s3 string, allow bool, tv int8, sec int64) {
		a := &Appraisal{MediaType: s1, Allow: allow, PolicyID: s2, PolicyVersion: s3,
			Failed:      []Violation{{Rule: s1, Claim: s2, Expected: s3}},
			Comparisons: []Comparison{{Name: s1, Claim: s2, Expected: []string{s3, s1}, Actual: s2, Outcome: s3}},
			TrustVector: TrustVector{Executables: tv, Hardware: -tv}, Time: time.Unix(sec%(1<<35), 0).UTC()}
		if len(s3)%2 == 0 {
			a.Warnings = []Violation{{Rule: s3, Actual: s1}}
		}
		checkAppraisalJSON(t, a)
	})
}
