package guard

import "sync/atomic"

// spsc is a bounded single-producer single-consumer queue. Each index is
// written by one side only, so two atomics order the slot writes with their
// publication: no lock, no channel, no allocation. The padding keeps the
// indices on separate cache lines so the two sides do not false-share.
type spsc[T any] struct {
	_    [64]byte
	head atomic.Uint64 // next slot to pop; written by the consumer
	_    [56]byte
	tail atomic.Uint64 // next slot to fill; written by the producer
	_    [56]byte
	mask uint64
	buf  []T
}

func newSPSC[T any](size int) *spsc[T] {
	n := 2
	for n < size {
		n <<= 1
	}
	return &spsc[T]{mask: uint64(n - 1), buf: make([]T, n)}
}

// push copies *v in; false when the ring is full. Producer only.
func (r *spsc[T]) push(v *T) bool {
	t := r.tail.Load()
	if t-r.head.Load() > r.mask {
		return false
	}
	r.buf[t&r.mask] = *v
	r.tail.Store(t + 1)
	return true
}

// pop copies the oldest entry into *v; false when empty. Consumer only.
func (r *spsc[T]) pop(v *T) bool {
	h := r.head.Load()
	if h == r.tail.Load() {
		return false
	}
	*v = r.buf[h&r.mask]
	r.head.Store(h + 1)
	return true
}
