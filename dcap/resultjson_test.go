package dcap

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
)

func checkResultJSON(t *testing.T, name string, r *Result) {
	t.Helper()
	want, werr := json.Marshal(r)
	got, err := r.AppendJSON([]byte("x"))
	if (err != nil) != (werr != nil) {
		t.Fatalf("%s: AppendJSON error %v, json.Marshal error %v", name, err, werr)
	}
	if err != nil {
		return
	}
	if string(got[:1]) != "x" || string(got[1:]) != string(want) {
		t.Errorf("%s: AppendJSON\n%s\njson.Marshal\n%s", name, got[1:], want)
	}
}

// fill sets every field reachable from v (a pointer) to a value that
// json.Marshal writes, derived from seed: strings that need escaping,
// non-zero numbers and times, one-element lists, allocated pointers.
// TCB statuses are set to a valid status (the zero one does not encode).
func fill(t *testing.T, v reflect.Value, seed int) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), seed+1)
		return
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			v.Set(reflect.ValueOf(time.Unix(1700000000+int64(seed), int64(seed)).UTC()))
			return
		}
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), seed+i)
			}
		}
		return
	}
	if v.Type() == reflect.TypeFor[Status]() {
		v.Set(reflect.ValueOf(collateral.OutOfDate))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("v<&>\"" + string(rune('a'+seed%26)))
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64, reflect.Int32, reflect.Int16, reflect.Int8:
		v.SetInt(int64(-seed - 1))
	case reflect.Uint, reflect.Uint64, reflect.Uint32, reflect.Uint16, reflect.Uint8:
		v.SetUint(uint64(seed + 1))
	case reflect.Slice:
		s := reflect.MakeSlice(v.Type(), 1, 1)
		fill(t, s.Index(0), seed+1)
		v.Set(s)
	case reflect.Array:
		for i := range v.Len() {
			fill(t, v.Index(i), seed+i)
		}
	default:
		t.Fatalf("%s: kind %s not filled by this test", v.Type(), v.Kind())
	}
}

// TestResultAppendJSON holds the hand-written encoder to json.Marshal:
// every field set (so a field added to Result, or to a type inside it,
// and not to AppendJSON fails here), the zero Result, the omitted members
// both ways, and real results of every quote kind.
func TestResultAppendJSON(t *testing.T) {
	var full Result
	fill(t, reflect.ValueOf(&full).Elem(), 0)
	checkResultJSON(t, "every field", &full)
	checkResultJSON(t, "nil", nil)
	checkResultJSON(t, "zero", &Result{}) // Unknown statuses: both refuse
	sparse := full
	sparse.Module, sparse.Current, sparse.TD, sparse.Enclave = nil, nil, nil, nil
	sparse.OutOfDateSince, sparse.TDXModuleIdentity, sparse.CollateralNotYetValid, sparse.CRLNotYetValid = time.Time{}, "", nil, false
	sparse.AdvisoryIDs, sparse.Collateral.PCKCRL.Number = nil, ""
	sparse.Platform.SupersededAt = time.Time{}
	checkResultJSON(t, "omitted members", &sparse)
	bad := full
	bad.TCBDate = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
	checkResultJSON(t, "year 10000", &bad)
	for _, kind := range dcaptest.QuoteKinds() {
		f, err := dcaptest.NewFixture(kind, dcaptest.FixtureOptions{})
		if err != nil {
			t.Fatal(err)
		}
		qb, err := f.BuildQuote()
		if err != nil {
			t.Fatal(err)
		}
		c, err := f.BuildCollateral()
		if err != nil {
			t.Fatal(err)
		}
		r, err := NewVerifier(VerifierOptions{TrustedRoot: f.PKI.Root.Certificate}).Verify(qb.Parsed, c, f.Now)
		if err != nil {
			t.Fatalf("%v: %v", kind, err)
		}
		checkResultJSON(t, kind.String(), r)
	}
}
