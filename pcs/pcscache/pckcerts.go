package pcscache

import (
	"context"
	"fmt"
	"path/filepath"
	"time"

	"github.com/tdproof/tdproof/pcs"
)

// pckCertsEntry is a cached pckcerts response.
type pckCertsEntry struct {
	certs     *pcs.PCKCerts
	fetchedAt time.Time
}

// PCKCerts returns every PCK certificate of a platform, cached like
// PCKCert (pckcerts/ID.body in the directory): from the cache while it was
// fetched less than the refresh interval ago (always, when offline) and
// every certificate is valid, otherwise from the upstream, which must
// implement pcs.PCKCertsSource. On upstream failure a cached, still valid
// response is served. Offline and not cached, the error wraps ErrOffline.
func (c *Cache) PCKCerts(ctx context.Context, req pcs.PCKCertsRequest) (*pcs.PCKCerts, error) {
	id := req.ID()
	ch := c.flight.DoChan(pckCertsDir+"/"+id, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.ftmo)
		defer cancel()
		return c.loadPCKCerts(fctx, id, req)
	})
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("pcscache: pck certificates: %w: %w", pcs.ErrUnavailable, context.Cause(ctx))
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return r.Val.(*pcs.PCKCerts), nil
	}
}

func (c *Cache) loadPCKCerts(ctx context.Context, id string, req pcs.PCKCertsRequest) (*pcs.PCKCerts, error) {
	now := c.cfg.now()
	c.mu.RLock()
	e := c.pcks[id]
	c.mu.RUnlock()
	base := filepath.Join(c.dir, pckCertsDir, id)
	if e == nil && c.dir != "" {
		if body, h, mtime, err := readResponse(base); err == nil {
			if p, err := pcs.DecodePCKCerts(body, h, c.cfg.root); err == nil {
				e = &pckCertsEntry{certs: p, fetchedAt: mtime}
				c.mu.Lock()
				c.pcks[id] = e
				c.mu.Unlock()
			} else {
				c.cfg.log.Warn("pcscache: ignoring unusable cached pck certificates", "file", base+pcs.BodySuffix, "err", err)
			}
		}
	}
	valid := e != nil && e.certs.CheckValidity(now) == nil
	if valid && (c.up == nil || c.cfg.interval == 0 || now.Before(e.fetchedAt.Add(c.cfg.interval))) {
		c.stats.hits.Add(1)
		return e.certs, nil
	}
	c.stats.misses.Add(1)
	ps, ok := c.up.(pcs.PCKCertsSource)
	if c.up == nil || !ok {
		cause := ErrOffline
		if c.up != nil {
			cause = fmt.Errorf("%w: the upstream cannot fetch PCK certificates", pcs.ErrUnavailable)
		}
		return nil, fmt.Errorf("pcscache: pck certificates %s (file %s/%s%s in %s): not cached or expired: %w", id, pckCertsDir, id, pcs.BodySuffix, c.dir, cause)
	}
	c.stats.fetches.Add(1)
	p, err := ps.PCKCerts(ctx, req)
	if err != nil {
		c.stats.upstreamErrors.Add(1)
		if valid {
			return e.certs, nil
		}
		return nil, fmt.Errorf("pcscache: pck certificates %s: %w", id, err)
	}
	c.mu.Lock()
	c.pcks[id] = &pckCertsEntry{certs: p, fetchedAt: now}
	c.mu.Unlock()
	if c.dir != "" {
		if err := writeResponse(base, p.Body, p.Header); err != nil {
			c.stats.diskErrors.Add(1)
			c.cfg.log.Warn("pcscache: writing cached pck certificates", "id", id, "err", err)
		}
	}
	return p, nil
}

var _ pcs.PCKCertsSource = (*Cache)(nil)
