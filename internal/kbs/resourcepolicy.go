package kbs

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/tdproof/tdproof/ear"
	"github.com/tdproof/tdproof/internal/store"
)

// maxCachedPolicies bounds the compiled resource policies kept; the cache
// is emptied when it is full.
const maxCachedPolicies = 16

// preparedPolicy is a compiled resource policy.
type preparedPolicy struct {
	pq rego.PreparedEvalQuery
	// affirmingOnly is set for DefaultResourcePolicy (the source byte for
	// byte), which allows exactly the tokens whose submods are not empty
	// and all have ear.status "affirming": for claims this broker signed
	// and holds as signed, allAffirming computes it without building the
	// Rego input (TestDefaultPolicyInGo holds the two equal).
	affirmingOnly bool
}

// allAffirming is DefaultResourcePolicy's allow for claims this broker
// signed: their payload's submods are c.Submods, each with ear.status the
// name of its Status.
func allAffirming(c *ear.Claims) bool {
	if len(c.Submods) == 0 {
		return false
	}
	for _, a := range c.Submods {
		if a.Status != ear.StatusAffirming {
			return false
		}
	}
	return true
}

// policyCache keeps compiled resource policies by the SHA-256 of their
// source (store.KBSPolicyDigest).
type policyCache struct {
	mu sync.Mutex
	m  map[string]preparedPolicy
}

func (c *policyCache) get(digest string) (preparedPolicy, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pq, ok := c.m[digest]
	return pq, ok
}

func (c *policyCache) put(digest string, pq preparedPolicy) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedPolicies {
		c.m = make(map[string]preparedPolicy)
	}
	c.m[digest] = pq
}

// resourcePolicy returns the compiled resource policy stored now: its
// digest from Config.Policies per call (one query, or none from a
// store.Cache), and a read and compilation only when the digest is not in
// the cache. With no stored policy (the row was removed
// behind the broker's back) it is Config.ResourcePolicy.
func (b *Broker) resourcePolicy(ctx context.Context) (preparedPolicy, error) {
	d, err := b.cfg.Policies.KBSPolicySHA256(ctx, store.KBSResourcePolicyName)
	if errors.Is(err, store.ErrNotFound) {
		return b.initial, nil
	}
	if err != nil {
		return preparedPolicy{}, err
	}
	if pq, ok := b.policies.get(d); ok {
		return pq, nil
	}
	p, err := b.cfg.Policies.KBSPolicy(ctx, store.KBSResourcePolicyName)
	if errors.Is(err, store.ErrNotFound) {
		return b.initial, nil
	}
	if err != nil {
		return preparedPolicy{}, err
	}
	pq, err := compilePolicy(p.Body)
	if err != nil {
		return preparedPolicy{}, err
	}
	b.policies.put(p.SHA256, pq)
	return pq, nil
}

// ErrInvalidPolicy wraps the errors of SetResourcePolicy for a policy that
// does not compile.
var ErrInvalidPolicy = errors.New("kbs: invalid resource policy")

// SetResourcePolicy compiles src and, when it compiles, stores it as the
// resource policy, replacing the previous one (which stays in force
// otherwise). Every broker on the same store uses it from its next
// resource request.
func (b *Broker) SetResourcePolicy(ctx context.Context, src string) (store.KBSPolicy, error) {
	pq, err := compilePolicy(src)
	if err != nil {
		return store.KBSPolicy{}, fmt.Errorf("%w: %w", ErrInvalidPolicy, err)
	}
	p, err := b.cfg.Store.PutKBSPolicy(ctx, store.KBSResourcePolicyName, src)
	if err != nil {
		return store.KBSPolicy{}, err
	}
	b.policies.put(p.SHA256, pq)
	return p, nil
}

// ResourcePolicy returns the stored resource policy (Config.ResourcePolicy
// if there is none).
func (b *Broker) ResourcePolicy(ctx context.Context) (store.KBSPolicy, error) {
	p, err := b.cfg.Store.KBSPolicy(ctx, store.KBSResourcePolicyName)
	if errors.Is(err, store.ErrNotFound) {
		return store.KBSPolicy{Name: store.KBSResourcePolicyName, Body: b.cfg.ResourcePolicy, SHA256: store.KBSPolicyDigest(b.cfg.ResourcePolicy)}, nil
	}
	return p, err
}
