package pipeline

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"net/netip"
	"sync"
	"sync/atomic"

	"sipedge/sipcore"
)

// BackendSpec is one configured backend ([dispatcher] backends).
type BackendSpec struct {
	Addr netip.AddrPort
	// Weight is the backend's relative share of calls; 0 drains it (no
	// new calls) while keeping it a known source for in-dialog requests.
	Weight float64
	// Priority is the RFC 2782 priority: backends of a higher value are a
	// standby set, given calls only when every one of a lower value is
	// down.
	Priority uint16
}

// Backend is one backend as workers see it in a snapshot.
type Backend struct {
	Addr   netip.AddrPort
	Weight float64
	Up     bool
	seed   uint64 // from the address, so a backend's scores survive reloads
	ctr    *backendCounters

	Priority uint16 // BackendSpec.Priority
}

// MaxWorkerSlots is how many workers get their own per-backend request
// counter; workers with higher IDs share slots (counted, not exact per core).
const MaxWorkerSlots = 64

// paddedCounter sits on its own cache line: each is written by one worker
// only, so counting never bounces a line between cores.
type paddedCounter struct {
	n atomic.Uint64
	_ [56]byte
}

// backendCounters are one backend's request counters, one slot per worker.
// They belong to the address, so they survive reloads and health changes.
type backendCounters struct {
	requests [MaxWorkerSlots]paddedCounter
}

// CountRequest counts one request sent to the backend by worker id. Only
// that worker writes its slot, so a load and a store suffice: no locked
// instruction on the hot path.
func (b *Backend) CountRequest(worker int) {
	if b.ctr == nil {
		return
	}
	c := &b.ctr.requests[uint(worker)%MaxWorkerSlots].n
	c.Store(c.Load() + 1)
}

func (c *backendCounters) total() uint64 {
	var t uint64
	for i := range c.requests {
		t += c.requests[i].n.Load()
	}
	return t
}

// BackendSet is an immutable snapshot of the backends. Workers load it once
// per batch; writers publish a new one instead of changing it.
type BackendSet struct {
	Backends []Backend
	// Version counts publications, starting at 1.
	Version uint64
	byAddr  map[netip.AddrPort]struct{}
	changed chan struct{}
	key     *sipcore.Key
}

// Changed is closed when a newer snapshot replaces this one: wait on it to
// see health changes or reloads without polling.
func (s *BackendSet) Changed() <-chan struct{} { return s.changed }

// IsBackend reports whether a is a backend's address and port: a caller on
// a backend's IP from another port (edge and PBX on one host, one NAT) is
// a caller, and trust is not extended to a whole host.
func (s *BackendSet) IsBackend(a netip.AddrPort) bool {
	_, ok := s.byAddr[netip.AddrPortFrom(a.Addr().Unmap(), a.Port())]
	return ok
}

// Up reports whether the backend at addr is present and up.
func (s *BackendSet) Up(addr netip.AddrPort) bool {
	for i := range s.Backends {
		if s.Backends[i].Addr == addr {
			return s.Backends[i].Up
		}
	}
	return false
}

// Pick chooses the backend for a call by weighted rendezvous hashing of its
// Call-ID among the backends that are up and have a weight. Each backend
// scores -weight / ln(u), u being a hash of (Call-ID, backend) mapped into
// (0,1); the highest score wins. -1/ln(u) of a uniform u is distributed so
// that a backend wins with probability weight/sum(weights) (the scores are
// exponential races), every message of a call picks the same backend with
// no state, and removing a backend moves only the calls it was winning.
// Only the lowest Priority value with a backend up and weighted takes
// part (RFC 2782 standby sets): the same single pass, a better priority
// replacing the best so far whatever its score. It returns -1 when no
// backend can take a call.
func (s *BackendSet) Pick(callID []byte) int {
	h := hashBytes(callID)
	if s.key != nil {
		h = s.key.CallHash(callID)
	}
	best, bestScore := -1, 0.0
	for i := range s.Backends {
		b := &s.Backends[i]
		if !b.Up || !(b.Weight > 0) || (best >= 0 && b.Priority > s.Backends[best].Priority) {
			continue // a standby set's backend loses to any up one of a better priority
		}
		x := mix64(h ^ b.seed)
		u := (float64(x>>11) + 0.5) / (1 << 53) // strictly inside (0,1)
		score := -b.Weight / math.Log(u)
		if best < 0 || score > bestScore || b.Priority < s.Backends[best].Priority {
			best, bestScore = i, score
		}
	}
	return best
}

// mix64 is the splitmix64 finaliser: a bijection that spreads every input
// bit over the output.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// hashBytes hashes 8 bytes at a time (multiply-rotate rounds and the
// splitmix64 finaliser): backend seeds, and Call-IDs only until SetKey
// gives the cluster key (whoever chooses Call-IDs could otherwise aim a
// flood's calls at one backend).
func hashBytes(b []byte) uint64 {
	h := uint64(len(b)) * 0x9e3779b97f4a7c15
	for len(b) >= 8 {
		h = bits.RotateLeft64(h^binary.LittleEndian.Uint64(b)*0xff51afd7ed558ccd, 29) * 0xc4ceb9fe1a85ec53
		b = b[8:]
	}
	var t uint64
	for i, c := range b {
		t |= uint64(c) << (8 * i)
	}
	h = bits.RotateLeft64(h^t*0xff51afd7ed558ccd, 29) * 0xc4ceb9fe1a85ec53
	return mix64(h)
}

func addrSeed(a netip.AddrPort) uint64 {
	b, _ := a.MarshalBinary()
	return mix64(hashBytes(b) ^ 0x5851f42d4c957f2d)
}

type health struct {
	up        bool
	fails, ok int
	// probesOK and probesFailed count every probe result since the
	// address was first configured.
	probesOK, probesFailed uint64
	ctr                    *backendCounters
}

// BackendStatus is one backend as the admin API reports it.
type BackendStatus struct {
	Addr   netip.AddrPort
	Weight float64
	Up     bool
	// ProbesOK and ProbesFailed count health probe results.
	ProbesOK, ProbesFailed uint64
	// Requests counts requests the dispatcher sent to it (summed over
	// workers at the time of the call).
	Requests uint64

	Priority uint16 // BackendSpec.Priority
}

// Status returns every configured backend's state and counters, in
// configuration order.
func (b *Backends) Status() []BackendStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]BackendStatus, len(b.specs))
	for i, sp := range b.specs {
		h := b.health[sp.Addr]
		out[i] = BackendStatus{Addr: sp.Addr, Weight: sp.Weight, Priority: sp.Priority, Up: h.up,
			ProbesOK: h.probesOK, ProbesFailed: h.probesFailed, Requests: h.ctr.total()}
	}
	return out
}

// Backends holds the current BackendSet behind an atomic pointer: workers
// read it without locks, while the prober, reloads and the admin API
// publish new snapshots (serialised by a mutex that workers never touch).
type Backends struct {
	cur    atomic.Pointer[BackendSet]
	mu     sync.Mutex
	specs  []BackendSpec
	health map[netip.AddrPort]*health
	ver    uint64
	key    *sipcore.Key
}

// SetKey keys the Call-ID hash with the cluster key (sipcore.Key.CallHash):
// every node holding the secret picks the same backend for a Call-ID, and
// nobody else can predict which.
func (b *Backends) SetKey(k *sipcore.Key) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.key = k
	b.publishLocked()
}

// NewBackends validates specs and publishes them, every backend up until
// probes say otherwise (so a box without probes configured works at once).
func NewBackends(specs []BackendSpec) (*Backends, error) {
	b := &Backends{health: map[netip.AddrPort]*health{}}
	if err := b.Replace(specs); err != nil {
		return nil, err
	}
	return b, nil
}

// Load returns the current snapshot.
func (b *Backends) Load() *BackendSet { return b.cur.Load() }

func checkSpecs(specs []BackendSpec) error {
	seen := map[netip.AddrPort]bool{}
	for i, s := range specs {
		if !s.Addr.IsValid() || s.Addr.Port() == 0 {
			return fmt.Errorf("dispatcher: backend %d address %v is not an IP:port", i+1, s.Addr)
		}
		if math.IsNaN(s.Weight) || math.IsInf(s.Weight, 0) || s.Weight < 0 {
			return fmt.Errorf("dispatcher: backend %v weight %v must be a finite number >= 0", s.Addr, s.Weight)
		}
		a := netip.AddrPortFrom(s.Addr.Addr().Unmap(), s.Addr.Port())
		if seen[a] {
			return fmt.Errorf("dispatcher: backend %v is listed twice", s.Addr)
		}
		seen[a] = true
	}
	return nil
}

// Replace installs a new backend list (a SIGHUP reload) atomically: workers
// pick it up at their next batch, no packet is dropped, and backends whose
// address did not change keep their health state.
func (b *Backends) Replace(specs []BackendSpec) error {
	if err := checkSpecs(specs); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	next := make(map[netip.AddrPort]*health, len(specs))
	cp := make([]BackendSpec, len(specs))
	for i, s := range specs {
		s.Addr = netip.AddrPortFrom(s.Addr.Addr().Unmap(), s.Addr.Port())
		cp[i] = s
		h := b.health[s.Addr]
		if h == nil {
			h = &health{up: true, ctr: &backendCounters{}}
		}
		next[s.Addr] = h
	}
	b.specs, b.health = cp, next
	b.publishLocked()
	return nil
}

func (b *Backends) publishLocked() {
	b.ver++
	s := &BackendSet{
		Backends: make([]Backend, len(b.specs)),
		Version:  b.ver,
		byAddr:   make(map[netip.AddrPort]struct{}, len(b.specs)),
		changed:  make(chan struct{}),
		key:      b.key,
	}
	for i, sp := range b.specs {
		h := b.health[sp.Addr]
		s.Backends[i] = Backend{Addr: sp.Addr, Weight: sp.Weight, Priority: sp.Priority, Up: h.up, seed: addrSeed(sp.Addr), ctr: h.ctr}
		s.byAddr[sp.Addr] = struct{}{}
	}
	old := b.cur.Swap(s)
	if old != nil {
		close(old.changed)
	}
}

// SetUp forces a backend's state (admin API, tests). It reports false when
// addr is not a backend.
func (b *Backends) SetUp(addr netip.AddrPort, up bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.health[addr]
	if h == nil {
		return false
	}
	h.fails, h.ok = 0, 0
	if h.up != up {
		h.up = up
		b.publishLocked()
	}
	return true
}

// observe records one probe result: down after downAfter failures in a
// row, up after upAfter successes in a row. It publishes only on a change.
func (b *Backends) observe(addr netip.AddrPort, ok bool, downAfter, upAfter int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h := b.health[addr]
	if h == nil { // removed by a reload while the probe was out
		return
	}
	if ok {
		h.probesOK++
		h.fails = 0
		h.ok++
		if !h.up && h.ok >= upAfter {
			h.up = true
			b.publishLocked()
		}
		return
	}
	h.probesFailed++
	h.ok = 0
	h.fails++
	if h.up && h.fails >= downAfter {
		h.up = false
		b.publishLocked()
	}
}
