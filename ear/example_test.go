package ear_test

import (
	"fmt"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/ear"
)

func ExampleVerify() {
	// Verifier side: a key set, a signer, a token for one TDX appraisal.
	key, _ := ear.GenerateKey(nil)
	keys, _ := ear.NewKeySet(key)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	signer, _ := ear.NewSigner(keys, ear.WithIssuer("https://verifier.example"),
		ear.WithClock(func() time.Time { return now }))
	tv, status := ear.Derive(ear.Summary{Authentic: true, TCBStatus: collateral.OutOfDate, Measurements: ear.Passed})
	token, _, _ := signer.Sign(ear.Claims{
		Nonce:   "rp-challenge-0001",
		Submods: map[string]ear.Appraisal{ear.SubmodTDX: {Status: status, TrustVector: &tv, PolicyID: ear.PolicyID("default", "1")}},
	})

	// Relying-party side: the published JWKS and the nonce it sent.
	jwks, _ := keys.JWKS()
	rpKeys, _ := ear.ParseJWKS(jwks)
	claims, err := ear.Verify(token, rpKeys, ear.VerifyOptions{
		Now:            func() time.Time { return now.Add(time.Minute) },
		ExpectedNonce:  "rp-challenge-0001",
		ExpectedIssuer: "https://verifier.example",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	tdx := claims.Submods[ear.SubmodTDX]
	fmt.Println(tdx.Status, tdx.TrustVector.Hardware, tdx.PolicyID)
	// Output: warning 32 default@1
}
