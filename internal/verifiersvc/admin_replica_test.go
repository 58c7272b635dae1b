package verifiersvc_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/http"
	"net/url"
	"os"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"
)

const postgresEnv = "TDPROOF_TEST_POSTGRES_DSN"

// postgresDSN returns a DSN for a fresh schema of the test server (dropped
// at the end). Without TDPROOF_TEST_POSTGRES_DSN the test is skipped,
// unless CI=true or TDPROOF_REQUIRE_POSTGRES=1, where it fails.
func postgresDSN(t *testing.T) string {
	t.Helper()
	base := os.Getenv(postgresEnv)
	if base == "" {
		if os.Getenv("CI") == "true" || os.Getenv("TDPROOF_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("%s is not set, but CI=true or TDPROOF_REQUIRE_POSTGRES=1 requires the PostgreSQL tests; run scripts/start-postgres.sh and export its output", postgresEnv)
		}
		t.Skipf("PostgreSQL test skipped: %s is not set (run scripts/start-postgres.sh and export its output)", postgresEnv)
	}
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", postgresEnv, err)
	}
	var rnd [6]byte
	_, _ = rand.Read(rnd[:])
	schema := "tdproof_svc_test_" + hex.EncodeToString(rnd[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.ExecContext(context.Background(), "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
		_ = admin.Close()
	})
	if _, err := admin.ExecContext(t.Context(), "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

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
