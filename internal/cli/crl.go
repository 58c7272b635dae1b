package cli

import (
	"context"
	"crypto/x509"
	"time"

	"github.com/spf13/pflag"

	"github.com/tdproof/tdproof/revocation/crlcache"
	"github.com/tdproof/tdproof/verifier"
)

// crlFlags turn on the revocation check of the AWS Nitro and Google EK/AK
// chains (docs/nitro.md, docs/gcp-tdx.md, "Revocation").
type crlFlags struct {
	dir     string
	offline bool
}

func (f *crlFlags) register(fl *pflag.FlagSet) {
	fl.StringVar(&f.dir, "crl-dir", "", "check the certificate chain's revocation: CRLs its certificates name are read from and fetched into `DIR`")
	fl.BoolVar(&f.offline, "crl-offline", false, "with --crl-dir: read CRLs from the directory only, fetch nothing")
}

// hook returns the Options.Revocation of nitro and tpm (nil without
// --crl-dir): the CRLs of the chain from the cache, current at now (the
// verification time; zero: the wall clock).
func (f *crlFlags) hook(ctx context.Context, now time.Time) func([]*x509.Certificate) ([]*x509.RevocationList, error) {
	if f.dir == "" {
		return nil
	}
	c := f.cache(now)
	return func(chain []*x509.Certificate) ([]*x509.RevocationList, error) { return c.CRLs(ctx, chain) }
}

// verifierOptions returns verifier.WithCRLs for the service pipeline
// (GCP's AK chain, Nitro documents) with --crl-dir, else nothing.
func (f *crlFlags) verifierOptions(now time.Time) []verifier.Option {
	if f.dir == "" {
		return nil
	}
	return []verifier.Option{verifier.WithCRLs(f.cache(now).CRLs)}
}

// cache is the CRL cache of --crl-dir, its clock at now (zero: the wall
// clock).
func (f *crlFlags) cache(now time.Time) *crlcache.Cache {
	c := &crlcache.Cache{Dir: f.dir, Offline: f.offline}
	if !now.IsZero() {
		c.Now = func() time.Time { return now }
	}
	return c
}
