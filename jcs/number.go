package jcs

import (
	"errors"
	"math"
	"strconv"
	"strings"
)

// formatNumber serializes f the way ECMAScript's Number.prototype.toString
// does (ECMA-262 Number::toString, as referenced by RFC 8785 §3.2.2.3):
// the shortest decimal digits that round-trip, in plain notation for
// decimal exponents in [-6, 21) and in exponent notation ("1e+21",
// "1.5e-7") otherwise. Negative zero is "0". NaN and infinities are
// errors.
func formatNumber(f float64) (string, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "", errors.New("NaN or infinity")
	}
	if f == 0 {
		return "0", nil
	}
	var sb strings.Builder
	if f < 0 {
		sb.WriteByte('-')
		f = -f
	}
	// Shortest round-trip digits: "d.ddde±xx" or "de±xx".
	e := strconv.FormatFloat(f, 'e', -1, 64)
	ePos := strings.IndexByte(e, 'e')
	mant, expText := e[:ePos], e[ePos+1:]
	digits := strings.Replace(mant, ".", "", 1)
	exp, err := strconv.Atoi(expText)
	if err != nil {
		return "", err
	}
	// The value is 0.digits × 10^n, with k = len(digits).
	k, n := len(digits), exp+1
	switch {
	case k <= n && n <= 21:
		sb.WriteString(digits)
		sb.WriteString(strings.Repeat("0", n-k))
	case 0 < n && n <= 21:
		sb.WriteString(digits[:n])
		sb.WriteByte('.')
		sb.WriteString(digits[n:])
	case -6 < n && n <= 0:
		sb.WriteString("0.")
		sb.WriteString(strings.Repeat("0", -n))
		sb.WriteString(digits)
	default:
		sb.WriteByte(digits[0])
		if k > 1 {
			sb.WriteByte('.')
			sb.WriteString(digits[1:])
		}
		sb.WriteByte('e')
		if n-1 >= 0 {
			sb.WriteByte('+')
		}
		sb.WriteString(strconv.Itoa(n - 1))
	}
	return sb.String(), nil
}
