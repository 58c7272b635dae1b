package verifier

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/ear"
)

// TestResultJSONCoversEveryField sets every exported field of Result to a
// value that json.Marshal writes (pointers to zero structs, one-element
// lists, strings that need escaping) and checks that AppendJSON writes
// the same bytes: a field added to Result but not to AppendJSON would be
// silently left out of every /v1/verify response.
func TestResultJSONCoversEveryField(t *testing.T) {
	var r Result
	rv := reflect.ValueOf(&r).Elem()
	for i := range rv.NumField() {
		f, ft := rv.Field(i), rv.Type().Field(i)
		if !ft.IsExported() {
			continue
		}
		switch v := f.Addr().Interface().(type) {
		case *ear.Status:
			*v = ear.StatusWarning
		case **dcap.Result:
			// A zero TCB status (Unknown) does not encode.
			*v = &dcap.Result{Status: collateral.UpToDate, Platform: dcap.ComponentStatus{Status: collateral.UpToDate},
				QE: dcap.ComponentStatus{Status: collateral.UpToDate}}
		case *ear.TrustVector:
			// Distinct values, so a member written from another field fails.
			*v = ear.TrustVector{InstanceIdentity: 2, Configuration: 3, Executables: 32, FileSystem: 33,
				Hardware: 96, RuntimeOpaque: 97, StorageOpaque: 99, SourcedData: -1}
		case *claims.Set:
			*v = claims.Set{"tee": "tdx", "user.<x>": []string{"a&b"}}
		default:
			switch f.Kind() {
			case reflect.String:
				f.SetString("v<&>\u2028" + ft.Name)
			case reflect.Bool:
				f.SetBool(true)
			case reflect.Pointer:
				f.Set(reflect.New(ft.Type.Elem()))
			case reflect.Slice:
				f.Set(reflect.MakeSlice(ft.Type, 1, 1))
			default:
				t.Fatalf("field %s: kind %s not filled by this test", ft.Name, f.Kind())
			}
		}
	}
	for name, res := range map[string]*Result{"every field set": &r, "zero": {}} {
		want, err := json.Marshal(res)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		got, err := res.AppendJSON(nil)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(got) != string(want) {
			t.Errorf("%s: AppendJSON\n%s\njson.Marshal\n%s", name, got, want)
		}
	}
}
