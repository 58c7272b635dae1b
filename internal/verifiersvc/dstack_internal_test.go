package verifiersvc

import (
	"fmt"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/dcap"
	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/verifier"
)

// TestDstackResponseTDRejected: a TD rejected on its attributes did not
// pass dstack-verifier's quote step, even though the DCAP result is kept;
// another failure after the quote reports quote_verified. Neither is
// valid, with or without the compat rule.
func TestDstackResponseTDRejected(t *testing.T) {
	for _, c := range []struct {
		cause      error
		quoteOK    bool
		wantPrefix string
	}{
		{fmt.Errorf("wrapped: %w", dstack.ErrMRSignerSEAM), false, reasonQuote},
		{fmt.Errorf("wrapped: %w", dstack.ErrEventLog), true, reasonEventLog},
	} {
		for _, compat := range []bool{false, true} {
			res := &verifier.Result{DCAP: &dcap.Result{}, Reason: c.cause.Error()}
			out := dstackResponse(res, c.cause, compat)
			if out.IsValid || out.Details.QuoteVerified != c.quoteOK || out.Reason == nil || !strings.HasPrefix(*out.Reason, c.wantPrefix) {
				t.Errorf("%v (compat %v): valid %v quote_verified %v reason %v", c.cause, compat, out.IsValid, out.Details.QuoteVerified, out.Reason)
			}
		}
	}
}
