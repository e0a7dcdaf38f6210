package xdpport

import (
	"encoding/binary"
	"math/bits"
	"math/rand/v2"
	"net/netip"
	"time"
)

// learnTable maps a peer's IP to the MAC its frames came from, learnt from
// every frame the port receives, so that datagrams to that IP (forwarded
// responses, requests to a backend that has talked to us) leave through
// the ring without waiting for the neighbour refresher. It also remembers,
// per destination, that a datagram to it recently went through the slow
// path, so that later ones do not overtake it (see Port.prepare).
//
// One worker owns it: no lock, no atomics. It is a fixed array of
// power-of-two size with open addressing over a window of learnWindow
// slots from the key's hash; nothing is ever deleted, so no tombstones.
// Replacement: a key already in the window is updated in place; else the
// first empty or dead slot is taken; else the least recently touched slot
// that is not holding back a slow-path datagram; else the least recently
// touched one. The hash is seeded per table, so an attacker who floods
// sources cannot aim collisions at a given peer's window.
type learnTable struct {
	slots []learnEntry
	mask  uint64
	ttl   int64 // ns a learnt MAC stays usable without a new frame
	seed0 uint64
	seed1 uint64
}

// learnEntry is one slot. A slot is empty when both times are zero.
type learnEntry struct {
	key [16]byte // netip.Addr.As16 of the unmapped address
	mac [6]byte
	// hasMAC: mac was learnt from a frame at seen (an entry may exist only
	// to hold a slow-path mark).
	hasMAC bool
	// pending: a datagram to this destination went through the slow path
	// at slowAt and may still be queued in the kernel.
	pending bool
	seen    int64 // clock() of the last frame from this IP
	slowAt  int64 // clock() of the last slow-path datagram to it
}

// learnWindow is how many slots a key may live in: the most slots a lookup
// reads. 8 entries of 40 bytes are five or six cache lines.
const learnWindow = 8

// slowHold bounds how long a slow-path mark holds a destination back: by
// then the kernel has resolved the neighbour or given up and dropped what
// it queued (Linux defaults: 3 solicitations 1 s apart).
const slowHold = int64(3 * time.Second)

// Defaults for Config.LearnEntries and Config.LearnTTL.
const (
	defaultLearnEntries = 4096
	defaultLearnTTL     = 5 * time.Minute
	maxLearnEntries     = 1 << 20
)

func newLearnTable(entries int, ttl time.Duration) *learnTable {
	n := 1 << bits.Len(uint(max(entries, learnWindow)-1))
	return &learnTable{
		slots: make([]learnEntry, n),
		mask:  uint64(n - 1),
		ttl:   int64(ttl),
		seed0: rand.Uint64(),
		seed1: rand.Uint64(),
	}
}

// learnKey is the table's key for addr, and false for an address that is
// never learnt or looked up (invalid).
func learnKey(addr netip.Addr) ([16]byte, bool) {
	if !addr.IsValid() {
		return [16]byte{}, false
	}
	return addr.Unmap().As16(), true
}

func (t *learnTable) home(k *[16]byte) uint64 {
	a := binary.LittleEndian.Uint64(k[:8]) ^ t.seed0
	b := binary.LittleEndian.Uint64(k[8:]) ^ t.seed1
	hi, lo := bits.Mul64(a, b^0x9e3779b97f4a7c15)
	h := hi ^ lo
	hi, lo = bits.Mul64(h^a, 0xbf58476d1ce4e5b9)
	return hi ^ lo
}

// live reports whether e still means something at now.
func (t *learnTable) live(e *learnEntry, now int64) bool {
	return e.hasMAC && now-e.seen < t.ttl || e.pending && now-e.slowAt < slowHold
}

// find returns k's entry if it is in the table and live, else nil.
func (t *learnTable) find(k *[16]byte, now int64) *learnEntry {
	h := t.home(k)
	for i := uint64(0); i < learnWindow; i++ {
		e := &t.slots[(h+i)&t.mask]
		if e.key == *k && (e.seen != 0 || e.slowAt != 0) {
			if !t.live(e, now) {
				return nil
			}
			return e
		}
	}
	return nil
}

// slot returns k's entry, taking a slot for it (by the replacement policy)
// if it has none. A taken slot is cleared.
func (t *learnTable) slot(k *[16]byte, now int64) *learnEntry {
	h := t.home(k)
	var free, old, oldPending *learnEntry
	for i := uint64(0); i < learnWindow; i++ {
		e := &t.slots[(h+i)&t.mask]
		used := e.seen != 0 || e.slowAt != 0
		if used && e.key == *k {
			if !t.live(e, now) {
				*e = learnEntry{key: *k}
			}
			return e
		}
		if !used || !t.live(e, now) {
			if free == nil {
				free = e
			}
			continue
		}
		touched := max(e.seen, e.slowAt)
		if e.pending && now-e.slowAt < slowHold {
			if oldPending == nil || touched < max(oldPending.seen, oldPending.slowAt) {
				oldPending = e
			}
		} else if old == nil || touched < max(old.seen, old.slowAt) {
			old = e
		}
	}
	e := free
	if e == nil {
		e = old
	}
	if e == nil {
		e = oldPending
	}
	*e = learnEntry{key: *k}
	return e
}

// observe records that a frame from addr came from mac at now: the newest
// observation replaces an older MAC at once (a moved peer).
func (t *learnTable) observe(addr netip.Addr, mac [6]byte, now int64) {
	if !learnable(addr, mac) {
		return
	}
	k := addr.As16()
	e := t.slot(&k, now)
	e.mac, e.hasMAC, e.seen = mac, true, now
}

// learnable rejects what no frame from an on-link peer or router carries
// as its source: multicast or zero MACs, unspecified, multicast, loopback
// and v4-mapped IPv6 source addresses (the last would alias the IPv4 key).
func learnable(addr netip.Addr, mac [6]byte) bool {
	if mac[0]&1 != 0 || mac == ([6]byte{}) {
		return false
	}
	return addr.IsValid() && !addr.IsUnspecified() && !addr.IsMulticast() && !addr.IsLoopback() && !addr.Is4In6() &&
		addr != netip.AddrFrom4([4]byte{255, 255, 255, 255})
}

// occupied counts live entries (tests).
func (t *learnTable) occupied(now int64) int {
	n := 0
	for i := range t.slots {
		if t.live(&t.slots[i], now) {
			n++
		}
	}
	return n
}
