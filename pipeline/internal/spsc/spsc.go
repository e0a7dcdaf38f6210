package spsc

import "sync/atomic"

// Ring is a bounded single-producer single-consumer queue of T. Producer
// methods (Push, Slot, Commit, Free) may be called by one goroutine at a
// time, consumer methods (Pop, Peek, Advance, Empty) by one other.
type Ring[T any] struct {
	_    [64]byte
	head atomic.Uint64 // next slot to pop; written by the consumer
	_    [56]byte
	tail atomic.Uint64 // next slot to fill; written by the producer
	_    [56]byte
	mask uint64
	buf  []T
}

// New returns a ring with room for at least size entries (a power of two,
// at least 2).
func New[T any](size int) *Ring[T] {
	n := 2
	for n < size {
		n <<= 1
	}
	return &Ring[T]{mask: uint64(n - 1), buf: make([]T, n)}
}

// Cap is the number of entries the ring holds.
func (r *Ring[T]) Cap() int { return len(r.buf) }

// Push copies *v in; false when the ring is full. Producer only.
func (r *Ring[T]) Push(v *T) bool {
	s := r.Slot()
	if s == nil {
		return false
	}
	*s = *v
	r.Commit()
	return true
}

// Slot returns the next free entry for the producer to fill in place, or
// nil when the ring is full; Commit publishes it. Producer only.
func (r *Ring[T]) Slot() *T {
	t := r.tail.Load()
	if t-r.head.Load() > r.mask {
		return nil
	}
	return &r.buf[t&r.mask]
}

// Commit publishes the entry Slot returned. Producer only.
func (r *Ring[T]) Commit() { r.tail.Store(r.tail.Load() + 1) }

// Pop copies the oldest entry into *v; false when empty. Consumer only.
func (r *Ring[T]) Pop(v *T) bool {
	e := r.Peek()
	if e == nil {
		return false
	}
	*v = *e
	r.Advance()
	return true
}

// Peek returns the oldest entry, valid until Advance, or nil when empty.
// Consumer only.
func (r *Ring[T]) Peek() *T {
	h := r.head.Load()
	if h == r.tail.Load() {
		return nil
	}
	return &r.buf[h&r.mask]
}

// Advance releases the entry Peek returned to the producer. Consumer only.
func (r *Ring[T]) Advance() { r.head.Store(r.head.Load() + 1) }

// Empty reports whether there is nothing to pop (either side may ask; the
// answer may be stale by the time it is used).
func (r *Ring[T]) Empty() bool { return r.head.Load() == r.tail.Load() }
