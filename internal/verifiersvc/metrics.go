package verifiersvc

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// latencyBuckets are the upper bounds (seconds) of the latency histogram.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

type outcomeKey struct{ route, outcome string }

type histogram struct {
	counts []uint64 // per bucket, not cumulative; last is +Inf
	sum    float64
	n      uint64
}

// metrics counts verifications by route and outcome (an EAR status or an
// error code) and their latency per route.
type metrics struct {
	mu       sync.Mutex
	outcomes map[outcomeKey]uint64
	latency  map[string]*histogram
}

func newMetrics() *metrics {
	return &metrics{outcomes: map[outcomeKey]uint64{}, latency: map[string]*histogram{}}
}

func (m *metrics) observe(route, outcome string, d time.Duration) {
	sec := d.Seconds()
	i, _ := slices.BinarySearch(latencyBuckets, sec)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.outcomes[outcomeKey{route, outcome}]++
	h := m.latency[route]
	if h == nil {
		h = &histogram{counts: make([]uint64, len(latencyBuckets)+1)}
		m.latency[route] = h
	}
	h.counts[i]++
	h.sum += sec
	h.n++
}

// write renders the Prometheus text exposition format (version 0.0.4).
func (m *metrics) write(b *strings.Builder) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b.WriteString("# HELP tdproof_verifications_total Verification requests by route and outcome (EAR status or error code).\n")
	b.WriteString("# TYPE tdproof_verifications_total counter\n")
	keys := make([]outcomeKey, 0, len(m.outcomes))
	for k := range m.outcomes {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b outcomeKey) int {
		return strings.Compare(a.route+"\x00"+a.outcome, b.route+"\x00"+b.outcome)
	})
	for _, k := range keys {
		fmt.Fprintf(b, "tdproof_verifications_total{route=%q,outcome=%q} %d\n", k.route, k.outcome, m.outcomes[k])
	}
	b.WriteString("# HELP tdproof_verification_duration_seconds Verification request latency by route.\n")
	b.WriteString("# TYPE tdproof_verification_duration_seconds histogram\n")
	routes := make([]string, 0, len(m.latency))
	for r := range m.latency {
		routes = append(routes, r)
	}
	slices.Sort(routes)
	for _, r := range routes {
		h := m.latency[r]
		var cum uint64
		for i, le := range latencyBuckets {
			cum += h.counts[i]
			fmt.Fprintf(b, "tdproof_verification_duration_seconds_bucket{route=%q,le=\"%g\"} %d\n", r, le, cum)
		}
		fmt.Fprintf(b, "tdproof_verification_duration_seconds_bucket{route=%q,le=\"+Inf\"} %d\n", r, h.n)
		fmt.Fprintf(b, "tdproof_verification_duration_seconds_sum{route=%q} %g\n", r, h.sum)
		fmt.Fprintf(b, "tdproof_verification_duration_seconds_count{route=%q} %d\n", r, h.n)
	}
}

// writeCollateralMetrics renders the collateral cache's counters and the
// age of every cached item (time since its issue date, at the cache's
// clock), in the Prometheus text format. Nothing without a cache.
func writeCollateralMetrics(b *strings.Builder, c CollateralStatus) {
	if c == nil {
		return
	}
	st, now := c.Stats(), c.Now()
	for _, m := range []struct {
		name, help string
		v          uint64
	}{
		{"tdproof_collateral_cache_hits_total", "Collateral item lookups answered from memory.", st.Hits},
		{"tdproof_collateral_cache_misses_total", "Collateral item lookups not answered from memory (disk, upstream, stale copy, or failed).", st.Misses},
		{"tdproof_collateral_cache_disk_hits_total", "Collateral cache misses answered from the cache directory.", st.DiskHits},
		{"tdproof_collateral_cache_stale_served_total", "Expired collateral items served within the stale grace period.", st.StaleServed},
		{"tdproof_collateral_upstream_fetches_total", "Collateral item fetches from the upstream PCS or PCCS.", st.UpstreamFetches},
		{"tdproof_collateral_upstream_errors_total", "Failed collateral item fetches from the upstream PCS or PCCS.", st.UpstreamErrors},
		{"tdproof_collateral_refreshes_total", "Successful background collateral refreshes.", st.Refreshes},
		{"tdproof_collateral_disk_errors_total", "Failed writes to the collateral cache directory.", st.DiskErrors},
	} {
		fmt.Fprintf(b, "# HELP %s %s\n# TYPE %s counter\n%s %d\n", m.name, m.help, m.name, m.name, m.v)
	}
	ratio := 0.0
	if total := st.Hits + st.Misses; total > 0 {
		ratio = float64(st.Hits) / float64(total)
	}
	b.WriteString("# HELP tdproof_collateral_cache_hit_ratio Share of collateral item lookups answered from memory since start (0 before any lookup).\n")
	b.WriteString("# TYPE tdproof_collateral_cache_hit_ratio gauge\n")
	fmt.Fprintf(b, "tdproof_collateral_cache_hit_ratio %g\n", ratio)
	b.WriteString("# HELP tdproof_collateral_items Collateral items in the cache.\n")
	b.WriteString("# TYPE tdproof_collateral_items gauge\n")
	fmt.Fprintf(b, "tdproof_collateral_items %d\n", len(st.Items))
	b.WriteString("# HELP tdproof_collateral_item_age_seconds Time since the issue date of each cached collateral item.\n")
	b.WriteString("# TYPE tdproof_collateral_item_age_seconds gauge\n")
	maxAge, anyAge := 0.0, false
	for _, it := range st.Items {
		if it.IssueDate.IsZero() {
			continue
		}
		age := now.Sub(it.IssueDate).Seconds()
		fmt.Fprintf(b, "tdproof_collateral_item_age_seconds{kind=%q,key=%q} %g\n", it.Key.Kind.String(), it.Key.Path(), age)
		if !anyAge || age > maxAge {
			maxAge, anyAge = age, true
		}
	}
	b.WriteString("# HELP tdproof_collateral_max_age_seconds Age of the oldest cached collateral item (absent when none has an issue date).\n")
	b.WriteString("# TYPE tdproof_collateral_max_age_seconds gauge\n")
	if anyAge {
		fmt.Fprintf(b, "tdproof_collateral_max_age_seconds %g\n", maxAge)
	}
	b.WriteString("# HELP tdproof_collateral_item_failures Consecutive failed refreshes of each cached collateral item.\n")
	b.WriteString("# TYPE tdproof_collateral_item_failures gauge\n")
	for _, it := range st.Items {
		fmt.Fprintf(b, "tdproof_collateral_item_failures{kind=%q,key=%q} %d\n", it.Key.Kind.String(), it.Key.Path(), it.Failures)
	}
}

func (s *Service) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	var b strings.Builder
	s.metrics.write(&b)
	writeCollateralMetrics(&b, s.opts.Collateral)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}
