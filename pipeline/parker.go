package pipeline

import (
	"errors"
	"net/netip"

	"sipedge/pipeline/internal/spsc"
)

// AnswerDataMax bounds the bytes a helper can hand back with one answer (an
// HA1, a contact URI, a relay address): answers travel inline in the ring so
// that neither side allocates.
const AnswerDataMax = 256

// Answer is what a Helper hands back for one parked message.
type Answer struct {
	// Status is helper-defined (0 commonly means "found"); the stage that
	// parked the message, and only it, reads the answer.
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

// Helper does the I/O a parked message waits on (a credential lookup, a
// relay offer) off the hot path.
//
// The worker calls Request on its own goroutine when a stage parks a
// message: it must return at once (hand the work to the helper's goroutine)
// and must copy key if it needs it later, because key is only valid during
// the call. The answer goes back with h.Answer from one goroutine per
// worker: the ring behind a Handle has a single producer.
type Helper interface {
	Request(h Handle, key []byte)
}

// Handle names one parked message for its helper. It is a small value:
// copy it freely. A Handle whose message was already resumed or given its
// fallback is stale: answering it is harmless (the worker discards it).
type Handle struct {
	ring *answerRing
	slot uint32
	gen  uint32
}

// Answer hands a back to the worker that parked the message; the worker
// copies it and resumes the message at the top of its next loop. It
// reports false when the worker's ring is full (the message then gets its
// fallback when its deadline passes). Only one goroutine may answer the
// handles of one worker's helper.
func (h Handle) Answer(a *Answer) bool {
	if h.ring == nil {
		return false
	}
	return h.ring.push(h.slot, h.gen, a)
}

type ringEntry struct {
	slot, gen uint32
	ans       Answer
}

// answerRing carries one helper's answers to one worker, and rings the
// worker's bell after each (it may be asleep).
type answerRing struct {
	q    *spsc.Ring[ringEntry]
	bell *bell
}

func (r *answerRing) push(slot, gen uint32, a *Answer) bool {
	e := r.q.Slot()
	if e == nil {
		return false
	}
	e.slot, e.gen = slot, gen
	e.ans.Status, e.ans.Len = a.Status, a.Len
	copy(e.ans.Data[:a.Len], a.Data[:a.Len])
	r.q.Commit()
	r.bell.ring()
	return true
}

type parkSlot struct {
	gen      uint32 // bumped on every release: stale answers mismatch
	inUse    bool
	stage    int32 // the stage that parked: its Resume gets the answer
	helper   int32 // the helper asked, whose fallback applies
	n        int
	src, dst netip.AddrPort
	hw       [6]byte
	timer    timerID
}

// parker is one worker's park/resume: a pool of message copies (fixed
// slots carved from one buffer, a free stack, no allocation after init),
// the timer wheel their deadlines run on, the helpers stages registered
// and one answer ring per helper. It knows nothing of stages or ports:
// the loop gives it the message to set aside and takes back what resumes
// or expires.
type parker struct {
	slots []parkSlot
	mem   []byte
	size  int
	free  []uint32

	wheel    *timerWheel
	helpers  []Helper
	fbs      []Fallback
	retry    [][]byte // Retry-After line of each helper's fallback 503
	rings    []*answerRing
	ringSize int
	bell     *bell
}

// maxHelpers bounds the helpers of one worker.
const maxHelpers = 255

func newParker(slots, size, timers int, now int64, b *bell, fire func(kind uint8, arg uint64)) *parker {
	p := &parker{
		slots: make([]parkSlot, slots), mem: make([]byte, slots*size), size: size,
		free: make([]uint32, slots), ringSize: 2 * slots, bell: b,
	}
	for i := range p.free {
		p.free[i] = uint32(slots - 1 - i)
		p.slots[i].timer = noTimer
	}
	p.wheel = newTimerWheel(timers, now, fire)
	return p
}

// register adds a helper with its fallback (Env.Helper).
func (p *parker) register(h Helper, fb Fallback) (HelperRef, error) {
	if h == nil {
		return HelperRef{}, errors.New("pipeline: Env.Helper needs a helper")
	}
	if len(p.helpers) == maxHelpers {
		return HelperRef{}, errors.New("pipeline: too many helpers on one worker (255)")
	}
	p.helpers = append(p.helpers, h)
	p.fbs = append(p.fbs, fb)
	p.retry = append(p.retry, RetryAfter(fb.RetryAfter))
	p.rings = append(p.rings, &answerRing{q: spsc.New[ringEntry](p.ringSize), bell: p.bell})
	return HelperRef{i: int32(len(p.helpers))}, nil
}

// helper returns the index of ref's helper, or -1.
func (p *parker) helper(ref HelperRef) int {
	if ref.i <= 0 || int(ref.i) > len(p.helpers) {
		return -1
	}
	return int(ref.i - 1)
}

func (p *parker) alloc() (uint32, bool) {
	n := len(p.free)
	if n == 0 {
		return 0, false
	}
	s := p.free[n-1]
	p.free = p.free[:n-1]
	p.slots[s].inUse = true
	return s, true
}

func (p *parker) release(s uint32) {
	sl := &p.slots[s]
	sl.inUse = false
	sl.gen++
	sl.timer = noTimer
	p.free = append(p.free, s) // within capacity: never allocates
}

func (p *parker) buf(s uint32) []byte {
	off := int(s) * p.size
	return p.mem[off : off+p.size : off+p.size]
}

func (p *parker) each(fn func(uint32)) {
	for i := range p.slots {
		if p.slots[i].inUse {
			fn(uint32(i))
		}
	}
}

func (p *parker) parked() int { return len(p.slots) - len(p.free) }

// Why a message could not be parked.
const (
	parkOK = iota
	parkTooLarge
	parkFull
)

// park copies msg aside for helper h until deadline (ns) and asks the
// helper for key. On failure nothing is kept.
func (p *parker) park(h, stage int, msg []byte, src, dst netip.AddrPort, hw [6]byte, deadline int64, key []byte) int {
	if len(msg) > p.size {
		return parkTooLarge
	}
	slot, ok := p.alloc()
	if !ok {
		return parkFull
	}
	s := &p.slots[slot]
	s.n = copy(p.buf(slot), msg)
	s.src, s.dst, s.hw, s.stage, s.helper = src, dst, hw, int32(stage), int32(h)
	s.timer = p.wheel.schedule(deadline, timerPark, uint64(slot)|uint64(s.gen)<<32)
	if s.timer == noTimer {
		p.release(slot)
		return parkFull
	}
	p.helpers[h].Request(Handle{ring: p.rings[h], slot: slot, gen: s.gen}, key)
	return parkOK
}

// answered returns the slot an answer is for, or false when the answer
// is late (the message was resumed or given its fallback already).
func (p *parker) answered(e *ringEntry) (*parkSlot, bool) {
	if int(e.slot) >= len(p.slots) {
		return nil, false
	}
	s := &p.slots[e.slot]
	if !s.inUse || s.gen != e.gen {
		return nil, false
	}
	p.wheel.cancel(s.timer)
	return s, true
}

// timedOut returns the slot of a park deadline timer, or false when the
// message went meanwhile.
func (p *parker) timedOut(arg uint64) (uint32, bool) {
	slot, gen := uint32(arg), uint32(arg>>32)
	s := &p.slots[slot]
	if !s.inUse || s.gen != gen {
		return 0, false
	}
	s.timer = noTimer
	return slot, true
}

// pending reports whether any helper answered.
func (p *parker) pending() bool {
	for _, r := range p.rings {
		if !r.q.Empty() {
			return true
		}
	}
	return false
}

// Timer kinds.
const (
	timerPark uint8 = iota + 1
)
