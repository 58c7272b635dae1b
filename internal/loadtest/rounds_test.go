package loadtest

import (
	"flag"
	"fmt"
	"slices"
	"testing"
	"time"
)

// serveRounds splits the tdproof serve load tests' load into rounds. The
// host of a shared virtual machine changes speed by up to a third within
// minutes, so a server's CPU per request measured in one stretch and a
// P-256 verification measured after it can disagree by that much; rounds
// alternate the two (load, then P-256 verify and sign, and again), so
// that each round's ratio sets figures taken within seconds of each other
// side by side, and the tests log each round's ratios and their median
// and range. The default, one round, keeps make test's duration.
var serveRounds = flag.Int("loadtest.serve.rounds", 1, "split each tdproof serve load test's -loadtest.serve.n and -loadtest.serve.d into `N` rounds, each followed by a P-256 verify and sign measurement")

// rounds returns the number of rounds (at least 1).
func rounds() int { return max(1, *serveRounds) }

// roundLimits returns one round's share of -loadtest.serve.n requests and
// -loadtest.serve.d.
func roundLimits() (int, time.Duration) {
	r := rounds()
	return max(1, *serveRequests/r), max(time.Millisecond, *serveDuration/time.Duration(r))
}

// loadResult is one load of a server process.
type loadResult struct {
	lat     []time.Duration // sorted
	elapsed time.Duration
	cpu     time.Duration // the server's CPU time over the load; 0 when /proc could not be read
}

// perRequest returns the server's CPU time per request, 0 if unknown.
func (r loadResult) perRequest() time.Duration {
	if r.cpu <= 0 || len(r.lat) == 0 {
		return 0
	}
	return r.cpu / time.Duration(len(r.lat))
}

// perSec returns the requests per second of wall time.
func (r loadResult) perSec() float64 { return float64(len(r.lat)) / r.elapsed.Seconds() }

// merge returns rounds as one load: their latencies together, their wall
// and CPU times summed (the CPU time 0 if a round's is unknown).
func merge(rs []loadResult) loadResult {
	var m loadResult
	known := true
	for _, r := range rs {
		m.lat = append(m.lat, r.lat...)
		m.elapsed += r.elapsed
		m.cpu += r.cpu
		known = known && r.cpu > 0
	}
	if !known {
		m.cpu = 0
	}
	slices.Sort(m.lat)
	return m
}

// p256Floor is one measurement of issue 15's floor of a request: one
// P-256 verification and one P-256 signature, in ns of CPU time.
type p256Floor struct{ verify, sign float64 }

// measureP256 measures p256VerifyNs and p256SignNs.
func measureP256() p256Floor { return p256Floor{verify: p256VerifyNs(), sign: p256SignNs()} }

// both returns the verification and the signature together.
func (f p256Floor) both() float64 { return f.verify + f.sign }

// meanP256 returns the mean of the measurements.
func meanP256(fs []p256Floor) p256Floor {
	var m p256Floor
	for _, f := range fs {
		m.verify += f.verify / float64(len(fs))
		m.sign += f.sign / float64(len(fs))
	}
	return m
}

// ratio returns a / b, or 0 when either is unknown (0).
func ratio(a time.Duration, b float64) float64 {
	if a <= 0 || b <= 0 {
		return 0
	}
	return float64(a) / b
}

// spread describes per-round values, format being one value's: their
// median and range. Unknown values (0) are left out.
func spread(xs []float64, format string) string {
	s := slices.DeleteFunc(slices.Clone(xs), func(x float64) bool { return x <= 0 })
	if len(s) == 0 {
		return "unknown"
	}
	slices.Sort(s)
	m := s[len(s)/2]
	if len(s)%2 == 0 {
		m = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return fmt.Sprintf("median "+format+", range "+format+"–"+format, m, s[0], s[len(s)-1])
}

func TestSpread(t *testing.T) {
	for _, c := range []struct {
		xs   []float64
		want string
	}{
		{nil, "unknown"},
		{[]float64{0, 0}, "unknown"},
		{[]float64{3}, "median 3.0, range 3.0–3.0"},
		{[]float64{4, 1, 3}, "median 3.0, range 1.0–4.0"},
		{[]float64{4, 1, 0, 2, 3}, "median 2.5, range 1.0–4.0"},
	} {
		if got := spread(c.xs, "%.1f"); got != c.want {
			t.Errorf("spread(%v) = %q, want %q", c.xs, got, c.want)
		}
	}
	m := merge([]loadResult{
		{lat: []time.Duration{3, 5}, elapsed: time.Second, cpu: 10},
		{lat: []time.Duration{1, 4}, elapsed: 2 * time.Second, cpu: 30},
	})
	if !slices.Equal(m.lat, []time.Duration{1, 3, 4, 5}) || m.elapsed != 3*time.Second || m.cpu != 40 || m.perRequest() != 10 {
		t.Errorf("merge: %+v", m)
	}
	if m := merge([]loadResult{{lat: []time.Duration{1}, elapsed: 1, cpu: 10}, {lat: []time.Duration{1}, elapsed: 1}}); m.cpu != 0 || m.perRequest() != 0 {
		t.Errorf("merge with an unknown CPU time: %+v", m)
	}
}
