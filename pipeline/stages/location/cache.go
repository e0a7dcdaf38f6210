package location

import "hash/maphash"

// ways is the associativity of the cache.
const ways = 8

type aorKey struct{ k0, k1 uint64 }

type hasher struct{ s0, s1 maphash.Seed }

func newHasher() hasher { return hasher{maphash.MakeSeed(), maphash.MakeSeed()} }

func (h *hasher) key(aor []byte) aorKey {
	k := aorKey{maphash.Bytes(h.s0, aor), maphash.Bytes(h.s1, aor)}
	if k.k0 == 0 {
		k.k0 = 1 // 0 marks an empty way
	}
	return k
}

type cacheSet struct {
	k0, k1 [ways]uint64
	exp    [ways]int64 // Ctx.Now clock
	used   [ways]int64
	t      [ways]*Target
}

// cache is one worker's location cache: owned by its goroutine, so
// neither locks nor atomics. Targets are immutable and shared.
type cache struct {
	sets      []cacheSet
	mask      uint64
	live      int
	evictions uint64
	expired   uint64 // entries found past their expiry
}

func newCache(entries int) *cache {
	n := 1
	for n*ways < entries {
		n <<= 1
	}
	return &cache{sets: make([]cacheSet, n), mask: uint64(n - 1)}
}

func (c *cache) get(k aorKey, now int64) *Target {
	s := &c.sets[k.k1&c.mask]
	for i := 0; i < ways; i++ {
		if s.k0[i] != k.k0 || s.k1[i] != k.k1 {
			continue
		}
		if now >= s.exp[i] {
			s.k0[i], s.t[i] = 0, nil
			c.live--
			c.expired++
			return nil
		}
		s.used[i] = now
		return s.t[i]
	}
	return nil
}

func (c *cache) put(k aorKey, t *Target, now, exp int64) {
	s := &c.sets[k.k1&c.mask]
	w := -1
	for i := 0; i < ways && w < 0; i++ {
		if s.k0[i] == k.k0 && s.k1[i] == k.k1 {
			w = i
		}
	}
	for i := 0; i < ways && w < 0; i++ {
		if s.k0[i] == 0 {
			w = i
			c.live++
		} else if now >= s.exp[i] {
			w = i
		}
	}
	if w < 0 {
		w = 0
		for i := 1; i < ways; i++ {
			if s.used[i] < s.used[w] {
				w = i
			}
		}
		c.evictions++
	}
	s.k0[w], s.k1[w], s.exp[w], s.used[w], s.t[w] = k.k0, k.k1, exp, now, t
}

func (c *cache) remove(k aorKey) {
	s := &c.sets[k.k1&c.mask]
	for i := 0; i < ways; i++ {
		if s.k0[i] == k.k0 && s.k1[i] == k.k1 {
			s.k0[i], s.t[i] = 0, nil
			c.live--
		}
	}
}

func (c *cache) clear() {
	for i := range c.sets {
		c.sets[i] = cacheSet{}
	}
	c.live = 0
}
