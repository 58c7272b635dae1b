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

func (s *Service) handleMetrics(w http.ResponseWriter, _ *http.Request) {
	var b strings.Builder
	s.metrics.write(&b)
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	_, _ = w.Write([]byte(b.String()))
}
