package dcaptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"time"

	"github.com/tdproof/tdproof/collateral"
)

// ReferenceTime is the default verification time of a [Fixture]:
// 2026-01-15T00:00:00Z, inside the default certificate validity
// ([DefaultNotBefore], [DefaultNotAfter]) and after the default TCB
// dates.
var ReferenceTime = time.Date(2026, 1, 15, 0, 0, 0, 0, time.UTC)

// FixtureOptions configures [NewFixture]. The zero value gives a fresh
// PKI, the default platform for the kind's TEE and ReferenceTime.
type FixtureOptions struct {
	// Now is the verification time the collateral is made valid for. If
	// zero, ReferenceTime.
	Now time.Time
	// PKI is reused if set (saves key generation across fixtures);
	// otherwise NewPKI(PKIOptions{}).
	PKI *PKI
	// Platform is the platform spec. If nil, DefaultTDXPlatformSpec or
	// DefaultSGXPlatformSpec according to the kind.
	Platform *PlatformSpec
}

// Fixture bundles everything one verification needs: a PKI, a platform,
// a quote spec and a collateral spec that together verify as UpToDate
// with no advisory IDs at Now. Tests change one field of QuoteSpec or
// CollateralSpec and build:
//
//	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
//	f.QuoteSpec.TD.TDAttributes[0] |= 1 // DEBUG
//	q, err := f.BuildQuote()
//	c, err := f.BuildCollateral()
//	// verify q.Parsed against c with f.PKI.Root.Certificate as trust anchor at f.Now
//
// A Fixture is not safe for concurrent modification; its Build methods
// may run concurrently when nobody modifies it.
type Fixture struct {
	Kind     QuoteKind
	Now      time.Time
	PKI      *PKI
	Platform *Platform
	// QuoteSpec is Platform.DefaultQuoteSpec(Kind) with a fixed,
	// pre-generated attestation key.
	QuoteSpec QuoteSpec
	// CollateralSpec is DefaultTDXCollateralSpec or
	// DefaultSGXCollateralSpec for the platform at Now.
	CollateralSpec CollateralSpec
}

// NewFixture creates a default fixture of the given kind.
func NewFixture(kind QuoteKind, opts FixtureOptions) (*Fixture, error) {
	if kind < SGXQuoteV3 || kind > TDXQuoteV5TD15 {
		return nil, fmt.Errorf("dcaptest: unknown quote kind %v", kind)
	}
	f := &Fixture{Kind: kind, Now: opts.Now, PKI: opts.PKI}
	if f.Now.IsZero() {
		f.Now = ReferenceTime
	}
	var err error
	if f.PKI == nil {
		if f.PKI, err = NewPKI(PKIOptions{}); err != nil {
			return nil, err
		}
	}
	var ps PlatformSpec
	switch {
	case opts.Platform != nil:
		ps = *opts.Platform
	case kind.IsTDX():
		ps = DefaultTDXPlatformSpec()
	default:
		ps = DefaultSGXPlatformSpec()
	}
	if f.Platform, err = f.PKI.NewPlatform(ps); err != nil {
		return nil, err
	}
	f.QuoteSpec = f.Platform.DefaultQuoteSpec(kind)
	if f.QuoteSpec.AttestationKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	if kind.IsTDX() {
		f.CollateralSpec = DefaultTDXCollateralSpec(f.Platform, f.Now)
	} else {
		f.CollateralSpec = DefaultSGXCollateralSpec(f.Platform, f.Now)
	}
	return f, nil
}

// BuildQuote builds the quote of QuoteSpec on the fixture's platform.
func (f *Fixture) BuildQuote() (*Quote, error) { return f.Platform.BuildQuote(f.QuoteSpec) }

// BuildCollateral builds and parses the collateral of CollateralSpec.
func (f *Fixture) BuildCollateral() (*collateral.Collateral, error) {
	return f.PKI.Collateral(f.CollateralSpec)
}

// BuildRawCollateral builds the collateral of CollateralSpec without
// parsing it.
func (f *Fixture) BuildRawCollateral() (*RawCollateral, error) {
	return f.PKI.RawCollateral(f.CollateralSpec)
}
