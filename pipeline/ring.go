package pipeline

import "sync/atomic"

// AnswerDataMax bounds the bytes a helper can hand back with one answer (an
// HA1, a contact URI, a relay address): answers travel inline in the ring so
// that neither side allocates.
const AnswerDataMax = 256

// Answer is what a Helper hands back for one parked message.
type Answer struct {
	// Status is helper-defined (0 commonly means "found"); the stage that
	// reads the answer interprets it.
	Status int32
	// Len is how many bytes of Data are set.
	Len uint16
	// Data carries the result bytes.
	Data [AnswerDataMax]byte
}

// Bytes returns the answer's data.
func (a *Answer) Bytes() []byte { return a.Data[:a.Len] }

// SetBytes copies b (truncated to AnswerDataMax) into the answer.
func (a *Answer) SetBytes(b []byte) { a.Len = uint16(copy(a.Data[:], b)) }

type ringEntry struct {
	slot, gen uint32
	ans       Answer
}

// answerRing is a bounded single-producer single-consumer queue: the helper
// goroutine of one worker pushes, the worker pops. Only head and tail are
// shared; each is written by one side, so two atomics (no lock, no channel)
// order the entry writes with the index publication. The padding keeps the
// two indices on separate cache lines so the sides do not false-share.
type answerRing struct {
	_    [64]byte
	head atomic.Uint64 // next entry to pop; written by the consumer
	_    [56]byte
	tail atomic.Uint64 // next entry to fill; written by the producer
	_    [56]byte
	mask uint64
	buf  []ringEntry
	bell *bell // rung after each push: the worker may be asleep
}

func newAnswerRing(size int) *answerRing {
	n := 1
	for n < size {
		n <<= 1
	}
	return &answerRing{mask: uint64(n - 1), buf: make([]ringEntry, n)}
}

// push is called only by the producer. It reports false when the ring is full.
func (r *answerRing) push(slot, gen uint32, a *Answer) bool {
	t := r.tail.Load()
	if t-r.head.Load() > r.mask {
		return false
	}
	e := &r.buf[t&r.mask]
	e.slot, e.gen = slot, gen
	e.ans.Status, e.ans.Len = a.Status, a.Len
	copy(e.ans.Data[:a.Len], a.Data[:a.Len])
	r.tail.Store(t + 1)
	r.bell.ring()
	return true
}

// peek is called only by the consumer: the oldest entry, or nil when empty.
// The entry stays valid until pop.
func (r *answerRing) peek() *ringEntry {
	h := r.head.Load()
	if h == r.tail.Load() {
		return nil
	}
	return &r.buf[h&r.mask]
}

// pop releases the entry returned by peek to the producer.
func (r *answerRing) pop() { r.head.Store(r.head.Load() + 1) }
