package pcscache

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/tdproof/tdproof/pcs"
)

// pckEntry is a cached PCK certificate.
type pckEntry struct {
	cert      *pcs.PCKCert
	fetchedAt time.Time
}

// PCKCert returns the PCK certificate for req: from memory or the
// directory (pckcert/ID.body) while it was fetched less than the refresh
// interval ago (always, when offline) and its chain is valid, otherwise
// from the upstream, which must implement pcs.PCKCertSource. On upstream
// failure a cached certificate whose chain is still valid is served.
func (c *Cache) PCKCert(ctx context.Context, req pcs.PCKCertRequest) (*pcs.PCKCert, error) {
	id := req.ID()
	ch := c.flight.DoChan(pckCertDir+"/"+id, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ftmo)
		defer cancel()
		return c.loadPCKCert(fctx, id, req)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("pcscache: pck certificate: %w: %w", pcs.ErrUnavailable, context.Cause(ctx))
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*pcs.PCKCert), nil
	}
}

func (c *Cache) loadPCKCert(ctx context.Context, id string, req pcs.PCKCertRequest) (*pcs.PCKCert, error) {
	now := c.cfg.now()
	c.mu.RLock()
	e := c.pck[id]
	c.mu.RUnlock()
	base := filepath.Join(c.dir, pckCertDir, id)
	if e == nil && c.dir != "" {
		if body, h, mtime, err := readResponse(base); err == nil {
			if p, err := pcs.DecodePCKCert(body, h, c.cfg.root); err == nil {
				e = &pckEntry{cert: p, fetchedAt: mtime}
				c.mu.Lock()
				c.pck[id] = e
				c.mu.Unlock()
			} else {
				c.cfg.log.Warn("pcscache: ignoring unusable cached pck certificate", "file", base+pcs.BodySuffix, "err", err)
			}
		}
	}
	valid := e != nil && e.cert.CheckValidity(now) == nil
	if valid && (c.up == nil || c.cfg.interval == 0 || now.Before(e.fetchedAt.Add(c.cfg.interval))) {
		c.stats.hits.Add(1)
		return e.cert, nil
	}
	c.stats.misses.Add(1)
	ps, ok := c.up.(pcs.PCKCertSource)
	if c.up == nil || !ok {
		cause := ErrOffline
		if c.up != nil {
			cause = fmt.Errorf("%w: the upstream cannot fetch PCK certificates", pcs.ErrUnavailable)
		}
		return nil, fmt.Errorf("pcscache: pck certificate %s (file %s/%s%s in %s): not cached or expired: %w", id, pckCertDir, id, pcs.BodySuffix, c.dir, cause)
	}
	c.stats.fetches.Add(1)
	p, err := ps.PCKCert(ctx, req)
	if err != nil {
		c.stats.upstreamErrors.Add(1)
		if valid {
			return e.cert, nil
		}
		return nil, fmt.Errorf("pcscache: pck certificate %s: %w", id, err)
	}
	c.mu.Lock()
	c.pck[id] = &pckEntry{cert: p, fetchedAt: now}
	c.mu.Unlock()
	if c.dir != "" {
		if err := writeResponse(base, p.Body, p.Header); err != nil {
			c.stats.diskErrors.Add(1)
			c.cfg.log.Warn("pcscache: writing cached pck certificate", "id", id, "err", err)
		}
	}
	return p, nil
}

// FMSPCs lists the FMSPCs of the upstream (not cached). It fails with
// ErrOffline when offline.
func (c *Cache) FMSPCs(ctx context.Context) ([]pcs.FMSPCEntry, error) {
	if c.up == nil {
		return nil, fmt.Errorf("pcscache: fmspc list: %w", ErrOffline)
	}
	l, ok := c.up.(pcs.FMSPCLister)
	if !ok {
		return nil, fmt.Errorf("pcscache: fmspc list: %w: the upstream cannot list FMSPCs", pcs.ErrUnavailable)
	}
	return l.FMSPCs(ctx)
}

// Compile-time checks.
var (
	_ pcs.Source        = (*Cache)(nil)
	_ pcs.Fetcher       = (*Cache)(nil)
	_ pcs.PCKCertSource = (*Cache)(nil)
	_ pcs.FMSPCLister   = (*Cache)(nil)
)
