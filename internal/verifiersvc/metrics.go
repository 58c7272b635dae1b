package verifiersvc

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// latencyBuckets are the upper bounds (seconds) of the latency histograms.
var latencyBuckets = []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}

// metrics are the service's Prometheus series, in a registry of its own
// (several services may live in one process, as in tests): the Go runtime
// (go_*) and process (process_*) collectors, verifications by route and
// outcome (an EAR status or an error code) with their latency, HTTP
// requests by route, method and status code, and the collateral cache
// read at scrape time.
type metrics struct {
	reg      *prometheus.Registry
	outcomes *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	requests *prometheus.HistogramVec
}

func newMetrics(col CollateralStatus) *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tdproof_verifications_total",
			Help: "Verification requests by route and outcome (EAR status or error code).",
		}, []string{"route", "outcome"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tdproof_verification_duration_seconds",
			Help:    "Verification request latency by route.",
			Buckets: latencyBuckets,
		}, []string{"route"}),
		requests: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "tdproof_http_request_duration_seconds",
			Help:    "HTTP request latency by route pattern, method and status code.",
			Buckets: latencyBuckets,
		}, []string{"route", "method", "code"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.outcomes, m.latency, m.requests,
	)
	if col != nil {
		m.reg.MustRegister(collateralCollector{col})
	}
	return m
}

func (m *metrics) observe(route, outcome string, d time.Duration) {
	m.outcomes.WithLabelValues(route, outcome).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
}

func (m *metrics) observeRequest(route, method string, code int, d time.Duration) {
	m.requests.WithLabelValues(route, method, strconv.Itoa(code)).Observe(d.Seconds())
}

// collateralCollector reports the collateral cache's counters and the age
// of every cached item (time since its issue date, at the cache's clock)
// when scraped. It is an unchecked collector: the item series vary.
type collateralCollector struct{ c CollateralStatus }

func (collateralCollector) Describe(chan<- *prometheus.Desc) {}

var (
	descItems    = prometheus.NewDesc("tdproof_collateral_items", "Collateral items in the cache.", nil, nil)
	descHitRatio = prometheus.NewDesc("tdproof_collateral_cache_hit_ratio",
		"Share of collateral item lookups answered from memory since start (0 before any lookup).", nil, nil)
	descItemAge = prometheus.NewDesc("tdproof_collateral_item_age_seconds",
		"Time since the issue date of each cached collateral item.", []string{"kind", "key"}, nil)
	descMaxAge = prometheus.NewDesc("tdproof_collateral_max_age_seconds",
		"Age of the oldest cached collateral item (absent when none has an issue date).", nil, nil)
	descItemFailures = prometheus.NewDesc("tdproof_collateral_item_failures",
		"Consecutive failed refreshes of each cached collateral item.", []string{"kind", "key"}, nil)
)

func (cc collateralCollector) Collect(ch chan<- prometheus.Metric) {
	st, now := cc.c.Stats(), cc.c.Now()
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
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(m.name, m.help, nil, nil), prometheus.CounterValue, float64(m.v))
	}
	ratio := 0.0
	if total := st.Hits + st.Misses; total > 0 {
		ratio = float64(st.Hits) / float64(total)
	}
	ch <- prometheus.MustNewConstMetric(descHitRatio, prometheus.GaugeValue, ratio)
	ch <- prometheus.MustNewConstMetric(descItems, prometheus.GaugeValue, float64(len(st.Items)))
	maxAge, anyAge := 0.0, false
	for _, it := range st.Items {
		kind, key := it.Key.Kind.String(), it.Key.Path()
		ch <- prometheus.MustNewConstMetric(descItemFailures, prometheus.GaugeValue, float64(it.Failures), kind, key)
		if it.IssueDate.IsZero() {
			continue
		}
		age := now.Sub(it.IssueDate).Seconds()
		ch <- prometheus.MustNewConstMetric(descItemAge, prometheus.GaugeValue, age, kind, key)
		if !anyAge || age > maxAge {
			maxAge, anyAge = age, true
		}
	}
	if anyAge {
		ch <- prometheus.MustNewConstMetric(descMaxAge, prometheus.GaugeValue, maxAge)
	}
}

func (s *Service) handleMetrics(w http.ResponseWriter, r *http.Request) {
	s.metricsHandler.ServeHTTP(w, r)
}

func newMetricsHandler(m *metrics) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}
