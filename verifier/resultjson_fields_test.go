package verifier

import (
	"reflect"
	"testing"
)

// TestResultJSONCoversEveryField checks that AppendJSON's head and tail
// types carry every exported field of Result (besides Claims, which it
// splices in), in Result's order and with the same JSON tags: a field
// added to Result but not to them would be silently left out of every
// /v1/verify response.
func TestResultJSONCoversEveryField(t *testing.T) {
	var want []reflect.StructField
	rt := reflect.TypeFor[Result]()
	for i := range rt.NumField() {
		if f := rt.Field(i); f.IsExported() && f.Name != "Claims" {
			want = append(want, f)
		}
	}
	var got []reflect.StructField
	for _, pt := range []reflect.Type{reflect.TypeFor[resultHead](), reflect.TypeFor[resultTail]()} {
		for i := range pt.NumField() {
			got = append(got, pt.Field(i))
		}
	}
	if len(got) != len(want) {
		t.Fatalf("AppendJSON encodes %d fields besides claims, Result has %d", len(got), len(want))
	}
	for i := range want {
		if got[i].Name != want[i].Name || got[i].Tag != want[i].Tag || got[i].Type != want[i].Type {
			t.Errorf("field %d: AppendJSON has %s %s %q, Result has %s %s %q", i,
				got[i].Name, got[i].Type, got[i].Tag, want[i].Name, want[i].Type, want[i].Tag)
		}
	}
}
