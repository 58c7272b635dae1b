package pccs

import (
	"bufio"
	"net/http"
	"slices"
	"strconv"
	"strings"
)

// metrics writes the Prometheus text exposition format (version 0.0.4):
// request counts by route and code, the cache counters, and per item
// its age (since issue) and the time left until it expires.
func (s *Server) metrics(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	b := bufio.NewWriter(w)
	defer b.Flush()
	family := func(name, typ, help string) {
		b.WriteString("# HELP " + name + " " + help + "\n# TYPE " + name + " " + typ + "\n")
	}
	sample := func(name string, labels []string, v float64) {
		b.WriteString(name)
		if len(labels) > 0 {
			b.WriteByte('{')
			for i := 0; i+1 < len(labels); i += 2 {
				if i > 0 {
					b.WriteByte(',')
				}
				b.WriteString(labels[i] + `="` + escapeLabel(labels[i+1]) + `"`)
			}
			b.WriteByte('}')
		}
		b.WriteString(" " + strconv.FormatFloat(v, 'g', -1, 64) + "\n")
	}

	s.mu.Lock()
	keys := make([][2]string, 0, len(s.requests))
	for k := range s.requests {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b [2]string) int { return strings.Compare(a[0]+" "+a[1], b[0]+" "+b[1]) })
	counts := make([]uint64, len(keys))
	for i, k := range keys {
		counts[i] = s.requests[k]
	}
	s.mu.Unlock()
	family("tdproof_pccs_requests_total", "counter", "HTTP requests served, by route and status code.")
	for i, k := range keys {
		sample("tdproof_pccs_requests_total", []string{"route", k[0], "code", k[1]}, float64(counts[i]))
	}

	st := s.cache.Stats()
	for _, c := range []struct {
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
		family(c.name, "counter", c.help)
		sample(c.name, nil, float64(c.v))
	}
	family("tdproof_pcscache_items", "gauge", "Items in the cache.")
	sample("tdproof_pcscache_items", nil, float64(len(st.Items)))
	now := s.cache.Now()
	family("tdproof_pcscache_item_age_seconds", "gauge", "Seconds since the item was issued (issueDate or thisUpdate).")
	for _, it := range st.Items {
		sample("tdproof_pcscache_item_age_seconds", itemLabels(it.Key.Path(), it.Key.Kind.String()), now.Sub(it.IssueDate).Seconds())
	}
	family("tdproof_pcscache_item_expiry_seconds", "gauge", "Seconds until the item leaves its validity window (negative: expired).")
	for _, it := range st.Items {
		sample("tdproof_pcscache_item_expiry_seconds", itemLabels(it.Key.Path(), it.Key.Kind.String()), it.ValidUntil.Sub(now).Seconds())
	}
	family("tdproof_pcscache_item_refresh_failures", "gauge", "Consecutive failed refreshes of the item.")
	for _, it := range st.Items {
		sample("tdproof_pcscache_item_refresh_failures", itemLabels(it.Key.Path(), it.Key.Kind.String()), float64(it.Failures))
	}
}

func itemLabels(path, kind string) []string { return []string{"item", path, "kind", kind} }

// escapeLabel escapes a label value: backslash, double quote, newline.
func escapeLabel(v string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(v)
}
