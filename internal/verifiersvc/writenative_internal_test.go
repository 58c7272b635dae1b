package verifiersvc

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"testing"

	"github.com/tdproof/tdproof/claims"
	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/verifier"
)

// TestWriteNativeIsEncoderOutput checks that writeNative writes the bytes
// json.NewEncoder writes for the NativeResponse (verifier's
// TestResultAppendJSON covers the claims reused from the token).
func TestWriteNativeIsEncoderOutput(t *testing.T) {
	for name, r := range map[string]*verifier.Result{
		"claims": {MediaType: verifier.MediaType, Authentic: true, Allow: true, Status: ear.StatusAffirming, TEE: "tdx", Nonce: "bm9uY2U",
			Claims: claims.Set{"tdx.quote.body.mr_td": "ab", "user.note": "<a & b>"}, Appraisal: &policy.Appraisal{Allow: true}},
		"no claims": {MediaType: verifier.MediaType, Status: ear.StatusContraindicated, Reason: "quote signature", TEE: "tdx",
			Appraisal: &policy.Appraisal{}},
	} {
		o := &verifier.Outcome{Result: r, Token: "eyJhbGciOiJFUzI1NiJ9.e30.c2ln"}
		var want bytes.Buffer
		if err := json.NewEncoder(&want).Encode(NativeResponse{MediaType: verifier.MediaType, Result: r, Token: o.Token}); err != nil {
			t.Fatal(err)
		}
		rec := httptest.NewRecorder()
		writeNative(rec, o)
		if rec.Code != 200 || rec.Header().Get("Content-Type") != verifier.MediaType || !bytes.Equal(rec.Body.Bytes(), want.Bytes()) {
			t.Errorf("%s: %d %s\n%s\nwant\n%s", name, rec.Code, rec.Header().Get("Content-Type"), rec.Body.Bytes(), want.Bytes())
		}
	}
}
