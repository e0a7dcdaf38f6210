package guard

import (
	"crypto/rand"
	"encoding/binary"
	"math/bits"
	"net/netip"
	"sync/atomic"
)

// Limits kept per source.
const (
	limAll = iota
	limInvite
	limRegister
	limBackend // a backend's (address and port) own, instead of the others
	numLimits
)

// gcra is a token bucket in its "generic cell rate algorithm" form: one
// timestamp per source (the theoretical arrival time) instead of a token
// count and a refill time, so checking costs two comparisons and no
// division on the hot path.
type gcra struct {
	interval int64 // ns per token
	tau      int64 // burst * interval: how far ahead of now tat may run
}

func newGCRA(l Limit) gcra {
	iv := int64(1e9 / l.Rate)
	if iv < 1 {
		iv = 1
	}
	return gcra{interval: iv, tau: iv * int64(l.Burst)}
}

// allow takes one token from the bucket whose state is *tat.
func (g *gcra) allow(tat *int64, now int64) bool {
	t := *tat
	if t < now {
		t = now
	}
	if t+g.interval-now > g.tau {
		return false
	}
	*tat = t + g.interval
	return true
}

// probe is how many slots a key may live in. Bounded probing bounds the
// cost of a miss and is what the replacement policy chooses among.
const probe = 8

// addrKey is an address as two words: IPv4 as its v4-mapped IPv6 form, the
// same key the XDP banned map uses.
type addrKey struct{ hi, lo uint64 }

func keyOf(a netip.Addr) addrKey {
	b := a.As16()
	return addrKey{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (k addrKey) addr() netip.Addr {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], k.hi)
	binary.BigEndian.PutUint64(b[8:], k.lo)
	return netip.AddrFrom16(b).Unmap()
}

// seed keys the slot hash per process, so an attacker cannot pick source
// addresses that all land in one probe window.
var seed = func() (s [2]uint64) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("guard: no randomness for the table seed: " + err.Error())
	}
	return [2]uint64{binary.LittleEndian.Uint64(b[:8]) | 1, binary.LittleEndian.Uint64(b[8:])}
}()

func (k addrKey) hash() uint64 {
	// Two rounds of a multiply-fold mix (128-bit product folded), keyed
	// by the seed.
	h, l := bits.Mul64(k.hi^seed[0], k.lo^seed[1])
	h, l = bits.Mul64(h^l^0x9e3779b97f4a7c15, seed[0])
	return h ^ l
}

// entry is one source's state in a worker's table.
type entry struct {
	key        addrKey
	last       int64 // last message seen
	hits       uint32
	authFails  uint32
	uaMatches  uint32 // User-Agent signature matches
	authStart  int64
	tat        [numLimits]int64
	overSince  int64 // first rejection of the current over-limit episode
	lastReject int64
}

// table is a worker's fixed-size source table: open addressing, probe
// window of 8. When a new source finds no free slot in its window, it
// replaces an entry idle for longer than idle, else the entry with the
// fewest messages (the oldest of those on a tie). A flood of spoofed
// sources, each seen once, thus only evicts its own kind, while sources
// that send steadily keep their state. Memory never grows.
type table struct {
	e         []entry
	mask      uint64
	idle      int64
	evictions uint64
}

func newTable(size int, idle int64) *table {
	n := 16
	for n < size {
		n <<= 1
	}
	return &table{e: make([]entry, n), mask: uint64(n - 1), idle: idle}
}

// get returns k's entry, creating it (and evicting another) if needed.
func (t *table) get(k addrKey, now int64) *entry {
	i := k.hash()
	var victim *entry
	free := false
	for p := uint64(0); p < probe; p++ {
		e := &t.e[(i+p)&t.mask]
		if e.hits != 0 && e.key == k {
			return e
		}
		if free {
			continue
		}
		if e.hits == 0 || now-e.last > t.idle {
			victim, free = e, true
			continue
		}
		if victim == nil || e.hits < victim.hits || (e.hits == victim.hits && e.last < victim.last) {
			victim = e
		}
	}
	if !free {
		t.evictions++
	}
	*victim = entry{key: k, last: now}
	return victim
}

// find returns k's entry without creating one (tests, operator views on
// the owning goroutine).
func (t *table) find(k addrKey) *entry {
	i := k.hash()
	for p := uint64(0); p < probe; p++ {
		e := &t.e[(i+p)&t.mask]
		if e.hits != 0 && e.key == k {
			return e
		}
	}
	return nil
}

// banSlot is one ban a worker enforces. Only the owning worker writes it;
// the operator's listing reads it from another goroutine, so every field is
// atomic and seq (odd while a write is in progress) makes the read of a
// whole slot consistent, seqlock style.
type banSlot struct {
	seq     atomic.Uint32
	reason  atomic.Uint32
	hi, lo  atomic.Uint64
	until   atomic.Int64
	dropped atomic.Uint64
}

// banTable is a worker's bans: open addressing with the same probe window
// as the source table, but separate from it so that a flood of new sources
// can never evict a ban. A full window replaces the automatic ban closest
// to lapsing; operator bans are never replaced.
type banTable struct {
	s    []banSlot
	mask uint64
	// maxUntil is the latest expiry in the table: when it has passed no
	// ban is live and the check costs one comparison.
	maxUntil int64
	full     uint64
}

func newBanTable(size int) *banTable {
	n := 16
	for n < size {
		n <<= 1
	}
	return &banTable{s: make([]banSlot, n), mask: uint64(n - 1)}
}

// check returns k's live ban, or nil.
func (b *banTable) check(k addrKey, now int64) *banSlot {
	if now >= b.maxUntil {
		return nil
	}
	i := k.hash()
	for p := uint64(0); p < probe; p++ {
		s := &b.s[(i+p)&b.mask]
		if s.until.Load() > now && s.hi.Load() == k.hi && s.lo.Load() == k.lo {
			return s
		}
	}
	return nil
}

// put bans k until the given time. It reports false when the window holds
// only live operator bans.
func (b *banTable) put(k addrKey, until int64, r Reason, now int64) bool {
	i := k.hash()
	var victim *banSlot
	var vUntil int64
	for p := uint64(0); p < probe; p++ {
		s := &b.s[(i+p)&b.mask]
		u := s.until.Load()
		if s.hi.Load() == k.hi && s.lo.Load() == k.lo && u > 0 {
			victim = s
			break
		}
		if u <= now {
			if victim == nil || vUntil > now {
				victim, vUntil = s, u
			}
			continue
		}
		if Reason(s.reason.Load()) == ReasonOperator && r != ReasonOperator {
			continue
		}
		if victim == nil || (vUntil > now && u < vUntil) {
			victim, vUntil = s, u
		}
	}
	if victim == nil {
		b.full++
		return false
	}
	same := victim.hi.Load() == k.hi && victim.lo.Load() == k.lo && victim.until.Load() > 0
	victim.seq.Add(1)
	victim.hi.Store(k.hi)
	victim.lo.Store(k.lo)
	victim.until.Store(until)
	victim.reason.Store(uint32(r))
	if !same {
		victim.dropped.Store(0)
	}
	victim.seq.Add(1)
	if until > b.maxUntil {
		b.maxUntil = until
	}
	return true
}

// remove lifts k's ban.
func (b *banTable) remove(k addrKey) {
	i := k.hash()
	for p := uint64(0); p < probe; p++ {
		s := &b.s[(i+p)&b.mask]
		if s.hi.Load() == k.hi && s.lo.Load() == k.lo {
			s.seq.Add(1)
			s.until.Store(0)
			s.seq.Add(1)
		}
	}
}

// banView is a consistent copy of a slot.
type banView struct {
	key     addrKey
	reason  Reason
	until   int64
	dropped uint64
}

// read copies slot s consistently; false if it kept changing.
func (s *banSlot) read(v *banView) bool {
	for try := 0; try < 100; try++ {
		q := s.seq.Load()
		if q&1 != 0 {
			continue
		}
		v.key = addrKey{s.hi.Load(), s.lo.Load()}
		v.reason = Reason(s.reason.Load())
		v.until = s.until.Load()
		v.dropped = s.dropped.Load()
		if s.seq.Load() == q {
			return true
		}
	}
	return false
}
