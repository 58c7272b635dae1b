package pccs

import (
	"net/http"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// newRegistry returns the server's Prometheus registry: the Go runtime
// (go_*) and process (process_*) collectors, requests by route and status
// code, and the cache read at scrape time (counters, and per item its age
// since issue and the time left until it expires).
func (s *Server) newRegistry() (*prometheus.Registry, *prometheus.CounterVec) {
	reg := prometheus.NewRegistry()
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "tdproof_pccs_requests_total",
		Help: "HTTP requests served, by route and status code.",
	}, []string{"route", "code"})
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		requests, cacheCollector{s},
	)
	return reg, requests
}

func (s *Server) countRequest(route string, code int) {
	s.requestsVec.WithLabelValues(route, strconv.Itoa(code)).Inc()
}

func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}).ServeHTTP(w, r)
}

// cacheCollector reports the cache when scraped; an unchecked collector
// (the item series vary).
type cacheCollector struct{ s *Server }

func (cacheCollector) Describe(chan<- *prometheus.Desc) {}

var (
	descItems      = prometheus.NewDesc("tdproof_pcscache_items", "Items in the cache.", nil, nil)
	itemLabelNames = []string{"item", "kind"}
	descItemAge    = prometheus.NewDesc("tdproof_pcscache_item_age_seconds", "Seconds since the item was issued (issueDate or thisUpdate).", itemLabelNames, nil)
	descItemExpiry = prometheus.NewDesc("tdproof_pcscache_item_expiry_seconds", "Seconds until the item leaves its validity window (negative: expired).", itemLabelNames, nil)
	descItemFail   = prometheus.NewDesc("tdproof_pcscache_item_refresh_failures", "Consecutive failed refreshes of the item.", itemLabelNames, nil)
)

func (cc cacheCollector) Collect(ch chan<- prometheus.Metric) {
	c := cc.s.cache
	st := c.Stats()
	for _, m := range []struct {
		name, help string
		v          uint64
	}{
		{"tdproof_pcscache_hits_total", "Item lookups answered from memory.", st.Hits},
		{"tdproof_pcscache_misses_total", "Item lookups not answered from memory.", st.Misses},
		{"tdproof_pcscache_disk_hits_total", "Misses answered from the cache directory.", st.DiskHits},
		{"tdproof_pcscache_stale_served_total", "Expired items served within the stale grace.", st.StaleServed},
		{"tdproof_pcscache_upstream_fetches_total", "Item fetches from the upstream PCS or PCCS.", st.UpstreamFetches},
		{"tdproof_pcscache_upstream_errors_total", "Failed item fetches from the upstream.", st.UpstreamErrors},
		{"tdproof_pcscache_refreshes_total", "Background refreshes that replaced an item.", st.Refreshes},
		{"tdproof_pcscache_disk_errors_total", "Failed writes to the cache directory.", st.DiskErrors},
	} {
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(m.name, m.help, nil, nil), prometheus.CounterValue, float64(m.v))
	}
	ch <- prometheus.MustNewConstMetric(descItems, prometheus.GaugeValue, float64(len(st.Items)))
	now := c.Now()
	for _, it := range st.Items {
		item, kind := it.Key.Path(), it.Key.Kind.String()
		ch <- prometheus.MustNewConstMetric(descItemAge, prometheus.GaugeValue, now.Sub(it.IssueDate).Seconds(), item, kind)
		ch <- prometheus.MustNewConstMetric(descItemExpiry, prometheus.GaugeValue, it.ValidUntil.Sub(now).Seconds(), item, kind)
		ch <- prometheus.MustNewConstMetric(descItemFail, prometheus.GaugeValue, float64(it.Failures), item, kind)
	}
}
