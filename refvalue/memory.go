package refvalue

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// MemoryStore is an in-memory Store: the embedded default until a
// database is configured, and the store of tests. The zero value is not
// usable; call NewMemoryStore. A MemoryStore is safe for concurrent use.
type MemoryStore struct {
	mu     sync.RWMutex
	next   uint64
	byName map[string][]Value
	names  map[string]string // id → name
}

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{byName: map[string][]Value{}, names: map[string]string{}}
}

// Add implements Store. IDs are "rv-1", "rv-2", … in order of addition.
func (m *MemoryStore) Add(ctx context.Context, v Value) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	v, err := Normalize(v)
	if err != nil {
		return "", err
	}
	v.Values = slices.Clone(v.Values)
	m.mu.Lock()
	defer m.mu.Unlock()
	m.next++
	v.ID = fmt.Sprintf("rv-%d", m.next)
	m.byName[v.Name] = append(m.byName[v.Name], v)
	m.names[v.ID] = v.Name
	return v.ID, nil
}

// List implements Store.
func (m *MemoryStore) List(ctx context.Context) ([]Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	out := make([]Value, 0, len(m.names))
	for _, vs := range m.byName {
		for _, v := range vs {
			out = append(out, clone(v))
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(out, func(a, b Value) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), compareID(a.ID, b.ID))
	})
	return out, nil
}

// Remove implements Store.
func (m *MemoryStore) Remove(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	name, ok := m.names[id]
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotFound, id)
	}
	delete(m.names, id)
	vs := slices.DeleteFunc(m.byName[name], func(v Value) bool { return v.ID == id })
	if len(vs) == 0 {
		delete(m.byName, name)
	} else {
		m.byName[name] = vs
	}
	return nil
}

// Lookup implements Store.
func (m *MemoryStore) Lookup(ctx context.Context, name string, at time.Time) ([]Value, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Value
	for _, v := range m.byName[name] {
		if v.ValidAt(at) {
			out = append(out, clone(v))
		}
	}
	return out, nil
}

func clone(v Value) Value {
	v.Values = slices.Clone(v.Values)
	return v
}

// compareID orders "rv-9" before "rv-10".
func compareID(a, b string) int {
	return cmp.Or(cmp.Compare(len(a), len(b)), cmp.Compare(a, b))
}
