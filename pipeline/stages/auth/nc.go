package auth

import "hash/maphash"

// ncWays is the associativity of the nonce-count table.
const ncWays = 4

// ncRetransmitWindow is how long (ns) a request carrying an nc already
// used is taken for a retransmission of the same transaction (same Via
// branch and CSeq): 64*T1, the lifetime of a UDP client transaction (RFC
// 3261 17.1.1.2). A stateless edge must forward retransmissions again; the
// backend's transaction absorbs them.
const ncRetransmitWindow = 32_000_000_000

// ncSet is one set of the table. issued is the nonce's issue time (wall
// clock, Unix ns) and tells when the entry can go: once the nonce is
// stale, Check refuses it anyway.
type ncSet struct {
	key    [ncWays]uint64
	issued [ncWays]int64
	nc     [ncWays]uint32
	tx     [ncWays]uint64 // hash of the Via branch and CSeq that used nc
	at     [ncWays]int64  // when nc was used (Ctx.Now clock)
}

// ncTable remembers, per worker, the highest nonce-count each live nonce
// was used with, so that a captured request replayed with the same nonce
// and nc is refused (RFC 7616 3.4: the server checks nc increases). One
// source always lands on one worker and a nonce is bound to its source,
// so one worker sees every use of a nonce. It is owned by the worker's
// goroutine and never grows.
//
// When a set is full the entry of the oldest nonce is dropped and floor
// rises to its issue time: a nonce issued at or before floor and not in
// the table may have been used already, so it is refused (the client is
// challenged again) rather than trusted. That bounds the memory without
// ever opening a replay window.
type ncTable struct {
	sets  []ncSet
	mask  uint64
	seed  maphash.Seed
	floor int64
}

func newNCTable(entries int) *ncTable {
	n := 1
	for n*ncWays < entries {
		n <<= 1
	}
	return &ncTable{sets: make([]ncSet, n), mask: uint64(n - 1), seed: maphash.MakeSeed()}
}

// ncVerdict is what use says of a nonce-count.
type ncVerdict uint8

const (
	ncFresh      ncVerdict = iota // a higher nc than before: accepted
	ncRetransmit                  // the same nc by the same transaction, recently: accepted
	ncReplay                      // an nc already used, or a nonce forgotten: refused
)

// use records that nonce (issued at issued, wall ns) was used with nc by
// the transaction tx at now, and says whether that is allowed. staleBefore
// is the issue time before which a nonce is stale: their entries are free.
func (t *ncTable) use(nonce []byte, issued int64, nc uint32, tx uint64, now, staleBefore int64) ncVerdict {
	k := maphash.Bytes(t.seed, nonce) | 1 // 0 marks a free way
	s := &t.sets[k&t.mask]
	free := -1
	for i := 0; i < ncWays; i++ {
		if s.key[i] == k {
			switch {
			case nc > s.nc[i]:
				s.nc[i], s.tx[i], s.at[i] = nc, tx, now
				return ncFresh
			case nc == s.nc[i] && tx == s.tx[i] && now-s.at[i] < ncRetransmitWindow:
				return ncRetransmit
			}
			return ncReplay
		}
		if free < 0 && (s.key[i] == 0 || s.issued[i] < staleBefore) {
			free = i
		}
	}
	if issued <= t.floor {
		return ncReplay
	}
	if free < 0 {
		free = 0
		for i := 1; i < ncWays; i++ {
			if s.issued[i] < s.issued[free] {
				free = i
			}
		}
		t.floor = max(t.floor, s.issued[free])
		if issued <= t.floor {
			return ncReplay
		}
	}
	s.key[free], s.issued[free], s.nc[free], s.tx[free], s.at[free] = k, issued, nc, tx, now
	return ncFresh
}
