package pipeline

import (
	"net/netip"

	"sipedge/sipcore"
)

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

type parkSlot struct {
	gen      uint32 // bumped on every release: stale answers mismatch
	inUse    bool
	stage    int // the stage that parked; resume at stage+1
	n        int
	src, dst netip.AddrPort
	hw       [6]byte
	timer    timerID
}

// parkPool is the per-core store of parked messages: fixed slots carved from
// one buffer, a free stack, no allocation after init.
type parkPool struct {
	slots []parkSlot
	mem   []byte
	size  int
	free  []uint32
}

func (p *parkPool) init(slots, size int) {
	p.slots = make([]parkSlot, slots)
	p.mem = make([]byte, slots*size)
	p.size = size
	p.free = make([]uint32, slots)
	for i := range p.free {
		p.free[i] = uint32(slots - 1 - i)
		p.slots[i].timer = noTimer
	}
}

func (p *parkPool) alloc() (uint32, bool) {
	n := len(p.free)
	if n == 0 {
		return 0, false
	}
	s := p.free[n-1]
	p.free = p.free[:n-1]
	p.slots[s].inUse = true
	return s, true
}

func (p *parkPool) release(s uint32) {
	sl := &p.slots[s]
	sl.inUse = false
	sl.gen++
	sl.timer = noTimer
	p.free = append(p.free, s) // within capacity: never allocates
}

func (p *parkPool) buf(s uint32) []byte {
	off := int(s) * p.size
	return p.mem[off : off+p.size : off+p.size]
}

func (p *parkPool) each(fn func(uint32)) {
	for i := range p.slots {
		if p.slots[i].inUse {
			fn(uint32(i))
		}
	}
}

// Parked reports how many messages are parked (for tests and gauges; call
// it only from the worker's goroutine or after Run returned).
func (w *Worker) Parked() int { return len(w.park.slots) - len(w.park.free) }

// parkMessage sets the message in w.ctx aside for the helper it asked for.
func (w *Worker) parkMessage(stage int) {
	c := &w.ctx
	if c.parkHelp < 0 || c.parkHelp >= len(w.rings) {
		w.drop(DropNoVerdict)
		return
	}
	if len(c.Buf) > w.park.size {
		w.fallback(DropParkTooLarge)
		return
	}
	slot, ok := w.park.alloc()
	if !ok {
		w.cnt[cParkFull]++
		w.fallback(DropParkFull)
		return
	}
	s := &w.park.slots[slot]
	s.n = copy(w.park.buf(slot), c.Buf)
	s.src, s.dst, s.hw, s.stage = c.Src, c.Dst, c.HW, stage
	s.timer = w.wheel.schedule(c.Now+int64(c.parkWait), timerPark, uint64(slot)|uint64(s.gen)<<32)
	if s.timer == noTimer {
		w.park.release(slot)
		w.cnt[cParkFull]++
		w.fallback(DropParkFull)
		return
	}
	w.cnt[cParked]++
	w.cfg.Helpers[c.parkHelp].Request(Handle{ring: w.rings[c.parkHelp], slot: slot, gen: s.gen}, c.parkKey)
}

// fallback gives the message in w.ctx the configured fallback.
func (w *Worker) fallback(r DropReason) {
	c := &w.ctx
	if w.cfg.Fallback == FallbackReject {
		if !c.Parsed {
			c.Parsed = sipcore.Parse(c.Buf, c.Msg) == nil
		}
		if c.Parsed && c.Respond(503, "Service Unavailable", w.retryExtra) == Respond {
			w.cnt[cFallback503]++
			w.commit()
			return
		}
	}
	w.drop(r)
}

// loadSlot puts parked message s into w.ctx, parsed.
func (w *Worker) loadSlot(slot uint32) *parkSlot {
	s := &w.park.slots[slot]
	c := &w.ctx
	c.reset(w.park.buf(slot)[:s.n], s.src, s.dst, s.hw)
	c.Parsed = sipcore.Parse(c.Buf, c.Msg) == nil
	return s
}

// expire applies the fallback to parked message slot and frees it.
func (w *Worker) expire(slot uint32, r DropReason) {
	s := w.loadSlot(slot)
	w.wheel.cancel(s.timer)
	w.fallback(r)
	w.releaseOut()
	w.park.release(slot)
}

func (w *Worker) releaseOut() {
	c := &w.ctx
	if c.hasOut {
		w.spare, w.hasSpare = c.out, true
		c.hasOut = false
	}
}

// drainAnswers resumes the messages whose helpers answered, at most one
// batch per helper per loop so that answers cannot starve receive.
func (w *Worker) drainAnswers() {
	for _, r := range w.rings {
		for k := 0; k < w.cfg.Batch; k++ {
			e := r.peek()
			if e == nil {
				break
			}
			w.resume(e)
			r.pop()
		}
	}
}

func (w *Worker) resume(e *ringEntry) {
	if int(e.slot) >= len(w.park.slots) {
		w.cnt[cLateAnswers]++
		return
	}
	s := &w.park.slots[e.slot]
	if !s.inUse || s.gen != e.gen {
		w.cnt[cLateAnswers]++
		return
	}
	w.wheel.cancel(s.timer)
	s = w.loadSlot(e.slot)
	w.ctx.Answer = &e.ans
	w.cnt[cResumed]++
	w.runStages(s.stage + 1)
	w.park.release(e.slot)
}
