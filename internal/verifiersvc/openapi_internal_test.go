package verifiersvc

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIListsEveryRoute checks that /openapi.json parses and
// documents exactly the routes of the route table.
func TestOpenAPIListsEveryRoute(t *testing.T) {
	var doc struct {
		OpenAPI string                                `json:"openapi"`
		Paths   map[string]map[string]json.RawMessage `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.1") {
		t.Errorf("openapi %q, want 3.1.x", doc.OpenAPI)
	}
	s := &Service{}
	documented := map[string]bool{}
	for p, ops := range doc.Paths {
		for m := range ops {
			documented[strings.ToUpper(m)+" "+p] = true
		}
	}
	served := map[string]bool{}
	for _, rt := range s.routes() {
		served[rt.method+" "+rt.path] = true
		if !documented[rt.method+" "+rt.path] {
			t.Errorf("%s %s is served but not in openapi.json", rt.method, rt.path)
		}
		var op struct {
			Responses map[string]json.RawMessage `json:"responses"`
			Security  []json.RawMessage          `json:"security"`
		}
		if err := json.Unmarshal(doc.Paths[rt.path][strings.ToLower(rt.method)], &op); err != nil || len(op.Responses) == 0 {
			t.Errorf("%s %s: no responses (%v)", rt.method, rt.path, err)
		}
		if rt.admin && (len(op.Security) == 0 || op.Responses["401"] == nil) {
			t.Errorf("%s %s: admin route without security or 401", rt.method, rt.path)
		}
	}
	for _, k := range slices.Sorted(maps.Keys(documented)) {
		if !served[k] {
			t.Errorf("%s is in openapi.json but not served", k)
		}
	}
}
