package bindings

import "sync/atomic"

// Mailbox hands immutable results that do not fit a pipeline.Answer
// (a 200's Contact list, a resolved target) from a helper goroutine to the
// worker that parked the message: the helper Puts a pointer and sends the
// (slot, seq) it got in the answer; the worker Gets it back without
// allocating or locking. Slots are reused round-robin; seq tells a result
// overwritten before the worker read it (then Get reports false), which
// takes len(slots) answers between one Put and its Get.
type Mailbox[T any] struct {
	slots []atomic.Pointer[boxed[T]]
	next  atomic.Uint64
}

type boxed[T any] struct {
	seq uint64
	v   T
}

// NewMailbox returns a mailbox of n slots (at least 1).
func NewMailbox[T any](n int) *Mailbox[T] {
	return &Mailbox[T]{slots: make([]atomic.Pointer[boxed[T]], max(n, 1))}
}

// Put stores v (helper side: it allocates the box) and returns where.
func (m *Mailbox[T]) Put(v T) (slot uint32, seq uint64) {
	seq = m.next.Add(1)
	slot = uint32(seq % uint64(len(m.slots)))
	m.slots[slot].Store(&boxed[T]{seq: seq, v: v})
	return slot, seq
}

// Get returns the value Put returned (slot, seq) for, if it is still there.
func (m *Mailbox[T]) Get(slot uint32, seq uint64) (T, bool) {
	var zero T
	if int(slot) >= len(m.slots) {
		return zero, false
	}
	b := m.slots[slot].Load()
	if b == nil || b.seq != seq {
		return zero, false
	}
	return b.v, true
}
