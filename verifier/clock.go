package verifier

import "time"

// Now returns the time the Verifier verifies at (WithClock; default
// time.Now), for checks a caller makes beside Verify that must use the
// same clock (the RA-TLS certificate profile of POST /v1/verify-cert).
func (v *Verifier) Now() time.Time { return v.now() }
