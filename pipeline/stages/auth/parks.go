package auth

import (
	"hash/maphash"
	"net/netip"

	"sipedge/pipeline"
)

// sourceParksSize is the number of per-source park counters per worker.
// Sources that share a counter share its bound: a collision makes the
// bound stricter for both, never looser.
const sourceParksSize = 4096

// sourceParks bounds the lookups one source has parked on one worker, so
// that random user names from one address can fill neither the park pool
// nor the store's queue for everyone else. A message stays parked at most
// the deadline, so counting the parks started in the current deadline
// window bounds the ones in flight without hearing of their end (a park
// that times out never comes back to the stage). Owned by the worker.
type sourceParks struct {
	max   uint16
	seed  maphash.Seed
	start []int64 // window start (Ctx.Now), per counter
	n     []uint16
}

func newSourceParks(max int) *sourceParks {
	return &sourceParks{max: uint16(max), seed: maphash.MakeSeed(),
		start: make([]int64, sourceParksSize), n: make([]uint16, sourceParksSize)}
}

// take reports whether src may park one more lookup at now, and counts it.
func (p *sourceParks) take(src netip.Addr, v6Bits int, now, window int64) bool {
	k := pipeline.SourceKey(src, v6Bits).As16()
	i := maphash.Bytes(p.seed, k[:]) % sourceParksSize
	if now-p.start[i] >= window {
		p.start[i], p.n[i] = now, 0
	}
	if p.n[i] >= p.max {
		return false
	}
	p.n[i]++
	return true
}
