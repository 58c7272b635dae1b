package verifiersvc_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tdproof/tdproof/internal/verifiersvc"
	"github.com/tdproof/tdproof/pcs"
	"github.com/tdproof/tdproof/pcs/pcscache"
)

// statsCollateral reports fixed cache statistics at a fixed time.
type statsCollateral struct {
	now   time.Time
	stats pcscache.Stats
}

func (c statsCollateral) Now() time.Time        { return c.now }
func (c statsCollateral) Stats() pcscache.Stats { return c.stats }

// TestMetricsCollateral: /metrics exposes the collateral cache's hit and
// miss counters, its hit ratio and the age of every cached item.
func TestMetricsCollateral(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tcb := pcs.ItemKey{Kind: pcs.KindTCBInfo, TEE: pcs.TEETDX, FMSPC: [6]byte{0x50, 0x80, 0x6f}}
	qe := pcs.ItemKey{Kind: pcs.KindQEIdentity, TEE: pcs.TEETDX}
	root := pcs.ItemKey{Kind: pcs.KindRootCACRL}
	col := statsCollateral{now: now, stats: pcscache.Stats{
		Hits: 30, Misses: 10, DiskHits: 2, StaleServed: 1, UpstreamFetches: 8, UpstreamErrors: 3, Refreshes: 5, DiskErrors: 4,
		Items: []pcscache.ItemStats{
			{Key: tcb, IssueDate: now.Add(-90 * time.Minute), Failures: 2},
			{Key: qe, IssueDate: now.Add(-2 * time.Hour)},
			{Key: root}, // no issue date: no age
		},
	}}
	e := newEnv(t, nil, nil, now, verifiersvc.Options{Collateral: col})
	r := e.get(t, "/metrics")
	if r.status != 200 || !strings.HasPrefix(r.ctype, "text/plain; version=0.0.4") {
		t.Fatalf("metrics %d %s", r.status, r.ctype)
	}
	m := string(r.body)
	for _, want := range []string{
		"# TYPE tdproof_collateral_cache_hits_total counter\ntdproof_collateral_cache_hits_total 30\n",
		"# TYPE tdproof_collateral_cache_misses_total counter\ntdproof_collateral_cache_misses_total 10\n",
		"\ntdproof_collateral_cache_disk_hits_total 2\n",
		"\ntdproof_collateral_cache_stale_served_total 1\n",
		"\ntdproof_collateral_upstream_fetches_total 8\n",
		"# TYPE tdproof_collateral_upstream_errors_total counter\ntdproof_collateral_upstream_errors_total 3\n",
		"\ntdproof_collateral_refreshes_total 5\n",
		"\ntdproof_collateral_disk_errors_total 4\n",
		"# TYPE tdproof_collateral_cache_hit_ratio gauge\ntdproof_collateral_cache_hit_ratio 0.75\n",
		"\ntdproof_collateral_items 3\n",
		"# TYPE tdproof_collateral_item_age_seconds gauge\n",
		`tdproof_collateral_item_age_seconds{key="tdx-tcb-fmspc-50806f000000",kind="tcb info"} 5400` + "\n",
		`tdproof_collateral_item_age_seconds{key="tdx-qe-identity",kind="qe identity"} 7200` + "\n",
		"\ntdproof_collateral_max_age_seconds 7200\n",
		`tdproof_collateral_item_failures{key="tdx-tcb-fmspc-50806f000000",kind="tcb info"} 2` + "\n",
		`tdproof_collateral_item_failures{key="IntelSGXRootCA.der",kind="root ca crl"} 0` + "\n",
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
	if strings.Contains(m, `tdproof_collateral_item_age_seconds{key="IntelSGXRootCA.der"`) {
		t.Errorf("metrics give an age to an item without an issue date:\n%s", m)
	}
	checkExposition(t, m)
}

// TestMetricsNoCollateral: without a collateral cache /metrics has no
// collateral series, and no lookups yet is a hit ratio of 0, not NaN.
func TestMetricsNoCollateral(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	m := string(newEnv(t, nil, nil, now, verifiersvc.Options{}).get(t, "/metrics").body)
	if strings.Contains(m, "tdproof_collateral_") {
		t.Errorf("metrics without a cache report collateral:\n%s", m)
	}
	m = string(newEnv(t, nil, nil, now, verifiersvc.Options{Collateral: statsCollateral{now: now}}).get(t, "/metrics").body)
	for _, want := range []string{"\ntdproof_collateral_cache_hit_ratio 0\n", "\ntdproof_collateral_items 0\n"} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %q:\n%s", want, m)
		}
	}
	if strings.Contains(m, "\ntdproof_collateral_max_age_seconds ") {
		t.Errorf("max age reported for an empty cache:\n%s", m)
	}
	checkExposition(t, m)
}

// checkExposition checks the text format's shape: every sample line is
// "name[{labels}] value", every family has one HELP and one TYPE line, and
// every sample belongs to a family declared before it.
func checkExposition(t *testing.T, m string) {
	t.Helper()
	typed := map[string]string{}
	helped := map[string]bool{}
	for line := range strings.Lines(m) {
		line = strings.TrimSuffix(line, "\n")
		switch {
		case strings.HasPrefix(line, "# HELP "):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "# HELP "), " ")
			if helped[name] {
				t.Errorf("two HELP lines for %s", name)
			}
			helped[name] = true
		case strings.HasPrefix(line, "# TYPE "):
			name, typ, _ := strings.Cut(strings.TrimPrefix(line, "# TYPE "), " ")
			if _, dup := typed[name]; dup {
				t.Errorf("two TYPE lines for %s", name)
			}
			typed[name] = typ
		default:
			name, _, _ := strings.Cut(line, " ")
			name, _, _ = strings.Cut(name, "{")
			fam := name
			if _, ok := typed[fam]; !ok {
				for _, sfx := range []string{"_bucket", "_sum", "_count"} {
					if base, ok := strings.CutSuffix(name, sfx); ok && (typed[base] == "histogram" || typed[base] == "summary") {
						fam = base
					}
				}
			}
			if _, ok := typed[fam]; !ok || !helped[fam] {
				t.Errorf("sample %q has no TYPE/HELP before it", line)
			}
			i := strings.LastIndexByte(line, ' ')
			if _, err := strconv.ParseFloat(line[i+1:], 64); i < 0 || err != nil || line[i+1:] == "NaN" ||
				(strings.Contains(line[:i], "{") && !strings.HasSuffix(line[:i], "}")) {
				t.Errorf("malformed sample %q", line)
			}
		}
	}
}
