package verifiersvc_test

import (
	"encoding/hex"
	"fmt"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/store"
	"github.com/tdproof/tdproof/internal/store/storetest"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/quote"
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

// TestCachedReplicas runs two services from store Caches (as tdproof
// serve does) on one database with 60 reference values: /v1/verify sends
// no SQL, and a policy activated through replica A changes replica B's
// decision within one second.
func TestCachedReplicas(t *testing.T) {
	for _, bk := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{{"sqlite", func(t *testing.T) string { return sqliteDSN(t) }}, {"postgres", postgresDSN}} {
		t.Run(bk.name, func(t *testing.T) {
			dsn := bk.dsn(t)
			q, col, f := outOfDateFixture(t)
			var verifyStatements atomic.Int64
			count := func(query string) {
				if query != store.GenerationQuery {
					verifyStatements.Add(1)
				}
			}
			a := replica(t, dsn, adminToken, col, f, replicaOptions{cached: true})
			b := replica(t, dsn, adminToken, col, f, replicaOptions{cached: true, observe: count})
			pq, err := quote.Parse(q)
			if err != nil {
				t.Fatal(err)
			}
			// 60 records: the TD's measurements (each among other accepted
			// values, so every verification looks them up and compares)
			// and user values.
			td := pq.TD
			measured := map[string][48]byte{"tdx.mr_td": td.MRTD, "tdx.rtmr_0": td.RTMRs[0], "tdx.rtmr_1": td.RTMRs[1], "tdx.rtmr_2": td.RTMRs[2]}
			for i := range 60 {
				name, value := fmt.Sprintf("user.component_%d", i), fmt.Sprintf("%096x", i+1)
				if i < 4 {
					name = []string{"tdx.mr_td", "tdx.rtmr_0", "tdx.rtmr_1", "tdx.rtmr_2"}[i]
					m := measured[name]
					value = hex.EncodeToString(m[:])
				}
				r := a.admin(t, http.MethodPost, "/admin/v1/refvalues", adminToken, map[string]any{"name": name, "values": []string{fmt.Sprintf("%096x", i+1000), value}})
				if r.status != http.StatusCreated {
					t.Fatalf("add reference value: %d %s", r.status, r.body)
				}
			}
			time.Sleep(2 * store.DefaultCachePoll) // B reloads
			before := verifyStatements.Load()
			for range 20 {
				if allow, res := allowOf(t, b, q); allow || res == nil {
					t.Fatal("B allowed an OutOfDate quote under the built-in default policy")
				}
			}
			if n := verifyStatements.Load() - before; n != 0 {
				t.Errorf("B sent %d statements for 20 verifications, want 0", n)
			}
			r := a.admin(t, http.MethodPost, "/admin/v1/policies", adminToken, map[string]any{"id": "default", "kind": "yaml", "body": acceptOutOfDate, "activate": true})
			if r.status != http.StatusCreated {
				t.Fatalf("A create: %d %s", r.status, r.body)
			}
			start := time.Now()
			for {
				allow, res := allowOf(t, b, q)
				if allow && res.Appraisal.PolicyVersion == "1" {
					matched := 0
					for _, c := range res.Appraisal.Comparisons {
						if c.Outcome == policy.Match {
							matched++
						}
					}
					if matched != len(measured) {
						t.Fatalf("B matched %d reference values, want %d: %+v", matched, len(measured), res.Appraisal.Comparisons)
					}
					break
				}
				if time.Since(start) > time.Second {
					t.Fatalf("B does not apply A's policy after 1 s")
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Logf("B applied A's policy after %v", time.Since(start).Round(time.Millisecond))
		})
	}
}
