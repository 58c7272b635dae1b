package jcs

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

func TestFormatNumberNonFinite(t *testing.T) {
	t.Parallel()
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		if s, err := formatNumber(f); err == nil {
			t.Errorf("formatNumber(%v) = %q, want error", f, s)
		}
	}
}

// TestFormatNumberRoundTrip checks on random bit patterns that the output
// parses back to the same double and uses the shortest digits.
func TestFormatNumberRoundTrip(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		f := math.Float64frombits(r.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		s, err := formatNumber(f)
		if err != nil {
			t.Fatalf("formatNumber(%v): %v", f, err)
		}
		g, err := strconv.ParseFloat(s, 64)
		if err != nil || g != f {
			t.Fatalf("formatNumber(%v) = %q, parses back to %v, %v", f, s, g, err)
		}
	}
}

func TestCompareUTF16(t *testing.T) {
	t.Parallel()
	tests := []struct {
		a, b string
		want int // sign
	}{
		{"", "", 0},
		{"a", "", 1},
		{"a", "b", -1},
		{"\uffff", "\U00010000", 1}, // FFFF > D800
		{"\ue000", "\U0001F600", 1}, // E000 > D83D
		{"\U0001F600", "\U0001F601", -1},
		{"\U0001F600", "\U0001F600", 0},
		{"\u00e9", "z", 1},
	}
	for _, tc := range tests {
		got := compareUTF16(tc.a, tc.b)
		if (got > 0) != (tc.want > 0) || (got < 0) != (tc.want < 0) {
			t.Errorf("compareUTF16(%q, %q) = %d, want sign %d", tc.a, tc.b, got, tc.want)
		}
	}
}
