package verifiersvc_test

import (
	"net/http"
	"testing"

	"github.com/tdproof/tdproof/internal/store/storetest"
)

// postgresDSN returns a fresh PostgreSQL schema (storetest).
func postgresDSN(t *testing.T) string { return storetest.PostgresDSN(t) }

// TestTwoReplicasSharePolicies: a policy created and activated through
// replica A's admin API changes replica B's /v1/verify decision at once.
func TestTwoReplicasSharePolicies(t *testing.T) {
	dsn := postgresDSN(t)
	q, col, f := outOfDateFixture(t)
	a := adminReplica(t, dsn, adminToken, col, f)
	b := adminReplica(t, dsn, adminToken, col, f)
	if allow, _ := allowOf(t, b, q); allow {
		t.Fatal("B allowed an OutOfDate quote under the built-in default policy")
	}
	r := a.admin(t, http.MethodPost, "/admin/v1/policies", adminToken, map[string]any{"id": "default", "kind": "yaml", "body": acceptOutOfDate})
	if r.status != http.StatusCreated {
		t.Fatalf("A create: %d %s", r.status, r.body)
	}
	if allow, _ := allowOf(t, b, q); allow {
		t.Fatal("B allowed before the activation")
	}
	if r := a.admin(t, http.MethodPost, "/admin/v1/policies/default/versions/1/activate", adminToken, nil); r.status != http.StatusOK {
		t.Fatalf("A activate: %d %s", r.status, r.body)
	}
	allow, res := allowOf(t, b, q)
	if !allow || res.Appraisal.PolicyVersion != "1" {
		t.Fatalf("B after A's activation: allow %v, version %s, failed %v", allow, res.Appraisal.PolicyVersion, res.Appraisal.Failed)
	}
	// B's admin API sees A's version; B's new active version reaches A.
	r = b.admin(t, http.MethodPost, "/admin/v1/policies", adminToken, map[string]any{"id": "default", "kind": "yaml", "activate": true,
		"body": "accepted_tcb_statuses: [UpToDate]\n"})
	if r.status != http.StatusCreated {
		t.Fatalf("B create: %d %s", r.status, r.body)
	}
	if allow, res := allowOf(t, a, q); allow || res.Appraisal.PolicyVersion != "2" {
		t.Fatalf("A after B's version 2: allow %v, version %s", allow, res.Appraisal.PolicyVersion)
	}
}
