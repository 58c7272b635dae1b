package claims

import (
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/tdproof/tdproof/jsonappend"
)

// A layout is the encoding of a Set without its values: the claim names
// in encoding order and, before each value, the bytes that lead to it
// (closing the objects the previous name was in, opening those this one
// is in, its key). Sets of one kind of evidence all have the same names,
// so a verifier works a layout out once and then only writes values.
type layout struct {
	names []string
	pre   [][]byte
	tail  []byte
	// tree: some name is a prefix of another; the set is encoded through
	// Tree, whose behaviour for such sets the direct encoding does not
	// reproduce.
	tree bool
	// size is the length of the last encoding with this layout: the
	// capacity an encoding grows its buffer to once, up front.
	size atomic.Int64
}

// layouts remembers the layouts of the name sets seen, by a hash of the
// names that does not depend on their order. A hash names a candidate
// only: AppendJSON checks that the set holds every name of the layout
// (and as many), so a collision costs a rebuild, never a wrong encoding.
var layouts struct {
	sync.RWMutex
	m map[uint64]*layout
}

// maxLayouts bounds the remembered layouts; sets of other names are
// encoded with a layout built for the call.
const maxLayouts = 256

var layoutSeed = maphash.MakeSeed()

// namesHash hashes the names of s independently of their order.
func namesHash(s Set) uint64 {
	var sum, xor uint64
	for k := range s {
		h := maphash.String(layoutSeed, k)
		sum += h
		xor ^= h * 0x9e3779b97f4a7c15
	}
	return sum ^ xor<<1 ^ uint64(len(s))
}

// cachedLayout returns the remembered layout for the names of s, or
// builds one and remembers it while there is room.
func cachedLayout(s Set, h uint64) *layout {
	layouts.RLock()
	l := layouts.m[h]
	layouts.RUnlock()
	if l != nil {
		return l
	}
	l = buildLayout(s)
	layouts.Lock()
	if layouts.m == nil {
		layouts.m = map[uint64]*layout{}
	}
	if len(layouts.m) < maxLayouts {
		layouts.m[h] = l
	}
	layouts.Unlock()
	return l
}

// buildLayout works out the layout of the names of s.
func buildLayout(s Set) *layout {
	names := make([]string, 0, len(s))
	plain := true
	for k := range s {
		names = append(names, k)
		plain = plain && !hasByteBelowDot(k)
	}
	if plain {
		// Without bytes below '.', byte order is segment order.
		slices.Sort(names)
	} else {
		slices.SortFunc(names, compareSegments)
	}
	l := &layout{names: names}
	// A name that is a prefix of another makes Tree drop or overwrite
	// values: leave those sets to the generic encoder. The names below a
	// prefix sort right after it.
	for i := 1; i < len(names); i++ {
		if a, b := names[i-1], names[i]; strings.HasPrefix(b, a) && b[len(a)] == '.' {
			l.tree = true
			return l
		}
	}
	l.pre = make([][]byte, len(names))
	var open []string // the objects currently open below the root
	var b []byte
	for i, name := range names {
		b = b[:0]
		if i == 0 {
			b = append(b, '{')
		}
		// Keep the open objects that name is inside of.
		rest, depth := name, 0
		for depth < len(open) {
			seg, after, found := strings.Cut(rest, ".")
			if !found || seg != open[depth] {
				break
			}
			rest, depth = after, depth+1
		}
		for len(open) > depth {
			b = append(b, '}')
			open = open[:len(open)-1]
		}
		if i > 0 {
			b = append(b, ',')
		}
		for {
			seg, after, found := strings.Cut(rest, ".")
			if !found {
				break
			}
			b = jsonappend.String(b, seg)
			b = append(b, ':', '{')
			open = append(open, seg)
			rest = after
		}
		b = jsonappend.String(b, rest)
		b = append(b, ':')
		l.pre[i] = slices.Clone(b)
	}
	if len(names) == 0 {
		l.tail = append(l.tail, '{')
	}
	for range open {
		l.tail = append(l.tail, '}')
	}
	l.tail = append(l.tail, '}')
	return l
}

// appendLayout appends the values of s in layout l. ok is false when s
// lacks a name of l (another set of names with the same hash).
func (s Set) appendLayout(dst []byte, l *layout) (_ []byte, ok bool, err error) {
	if len(s) != len(l.names) {
		return dst, false, nil
	}
	start := len(dst)
	dst = slices.Grow(dst, int(l.size.Load()))
	for i, name := range l.names {
		v, found := s[name]
		if !found {
			return dst, false, nil
		}
		dst = append(dst, l.pre[i]...)
		if dst, err = appendJSONValue(dst, v); err != nil {
			return dst, true, err
		}
	}
	dst = append(dst, l.tail...)
	l.size.Store(int64(len(dst) - start))
	return dst, true, nil
}
