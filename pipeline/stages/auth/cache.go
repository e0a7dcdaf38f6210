package auth

import "hash/maphash"

// ways is the associativity of the cache: a lookup compares at most this
// many tags, and eviction picks the least recently used of them.
const ways = 8

// userKey is the cache's identity of a user name: a 128-bit keyed hash.
type userKey struct{ k0, k1 uint64 }

// hasher derives userKeys. Its seeds are random per process and shared by
// every core (read-only after New).
type hasher struct{ s0, s1 maphash.Seed }

func newHasher() hasher { return hasher{maphash.MakeSeed(), maphash.MakeSeed()} }

func (h *hasher) key(user []byte) userKey {
	k := userKey{maphash.Bytes(h.s0, user), maphash.Bytes(h.s1, user)}
	if k.k0 == 0 {
		k.k0 = 1 // 0 marks an empty way
	}
	return k
}

// Slot flags.
const (
	slotNegative uint8 = 1 << iota // the store said the user does not exist
)

// cacheSet is one set of ways. The tags come first so that a lookup reads
// two cache lines of tags before touching any entry.
type cacheSet struct {
	k0, k1 [ways]uint64
	exp    [ways]int64 // expiry (Ctx.Now clock), 0 never
	used   [ways]int64 // last hit (Ctx.Now clock), for LRU eviction
	flags  [ways]uint8
	entry  [ways]Entry
}

// cache is one worker's credential cache. It is owned by that worker's
// goroutine: no method may be called from anywhere else.
type cache struct {
	sets      []cacheSet
	mask      uint64
	evictions uint64
	live      int // ways in use
}

// cacheBytesPerEntry is what one entry costs, for the README and config.
const cacheBytesPerEntry = 8 + 8 + 8 + 8 + 1 + 1 + 32 + 64

func newCache(entries int) *cache {
	n := 1
	for n*ways < entries {
		n <<= 1
	}
	return &cache{sets: make([]cacheSet, n), mask: uint64(n - 1)}
}

// capacity is how many entries the cache holds.
func (c *cache) capacity() int { return len(c.sets) * ways }

// get returns the live entry for k (negative says the user is known not to
// exist), and whether there is one.
func (c *cache) get(k userKey, now int64) (e *Entry, negative, ok bool) {
	s := &c.sets[k.k1&c.mask]
	for i := 0; i < ways; i++ {
		if s.k0[i] != k.k0 || s.k1[i] != k.k1 {
			continue
		}
		if s.exp[i] != 0 && now >= s.exp[i] {
			s.k0[i] = 0 // expired: free the way
			c.live--
			return nil, false, false
		}
		s.used[i] = now
		return &s.entry[i], s.flags[i]&slotNegative != 0, true
	}
	return nil, false, false
}

// put stores e (nil for a negative entry) for k until exp (0: until
// evicted or invalidated), replacing k's entry, else taking a free or
// expired way, else evicting the set's least recently used entry. A
// negative entry only ever evicts another negative one: random user names
// from a guesser must not push real users out of the cache (each would
// then be looked up again, which is the storm the cache is there to stop).
// It reports whether e was stored.
func (c *cache) put(k userKey, e *Entry, now, exp int64) bool {
	s := &c.sets[k.k1&c.mask]
	w := -1
	for i := 0; i < ways; i++ {
		if s.k0[i] == k.k0 && s.k1[i] == k.k1 {
			w = i
			break
		}
	}
	if w < 0 {
		for i := 0; i < ways; i++ {
			if s.k0[i] == 0 {
				w = i
				c.live++
				break
			}
			if s.exp[i] != 0 && now >= s.exp[i] {
				w = i
				break
			}
		}
	}
	if w < 0 {
		for i := 0; i < ways; i++ {
			if e == nil && s.flags[i]&slotNegative == 0 {
				continue
			}
			if w < 0 || s.used[i] < s.used[w] {
				w = i
			}
		}
		if w < 0 {
			return false // every way holds a found user
		}
		c.evictions++
	}
	s.k0[w], s.k1[w], s.exp[w], s.used[w] = k.k0, k.k1, exp, now
	if e == nil {
		s.flags[w] = slotNegative
		s.entry[w] = Entry{}
	} else {
		s.flags[w] = 0
		s.entry[w] = *e
	}
	return true
}

// remove forgets k.
func (c *cache) remove(k userKey) {
	s := &c.sets[k.k1&c.mask]
	for i := 0; i < ways; i++ {
		if s.k0[i] == k.k0 && s.k1[i] == k.k1 {
			s.k0[i] = 0
			s.entry[i] = Entry{}
			c.live--
		}
	}
}

// clear forgets everything.
func (c *cache) clear() {
	for i := range c.sets {
		c.sets[i] = cacheSet{}
	}
	c.live = 0
}

// size counts live and expired entries (tests, gauges).
func (c *cache) size() int {
	n := 0
	for i := range c.sets {
		for w := 0; w < ways; w++ {
			if c.sets[i].k0[w] != 0 {
				n++
			}
		}
	}
	return n
}
