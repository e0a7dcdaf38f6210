package pipeline

import (
	"math/rand/v2"
	"net/netip"
	"runtime"
	"testing"

	"sipedge/pipeline/internal/spsc"
)

func TestAnswerRingSPSC(t *testing.T) {
	r := &answerRing{q: spsc.New[ringEntry](8)}
	const n = 200000
	done := make(chan struct{})
	go func() {
		defer close(done)
		var a Answer
		for i := uint32(0); i < n; {
			a.Status = int32(i)
			a.SetBytes([]byte{byte(i), byte(i >> 8)})
			if r.push(i, i*3, &a) {
				i++
			} else {
				runtime.Gosched() // full: let the consumer run on a busy machine
			}
		}
	}()
	for want := uint32(0); want < n; {
		e := r.q.Peek()
		if e == nil {
			runtime.Gosched()
			continue
		}
		if e.slot != want || e.gen != want*3 || e.ans.Status != int32(want) || e.ans.Len != 2 || e.ans.Data[0] != byte(want) || e.ans.Data[1] != byte(want>>8) {
			t.Fatalf("entry %d: got slot %d gen %d status %d data %v", want, e.slot, e.gen, e.ans.Status, e.ans.Data[:2])
		}
		r.q.Advance()
		want++
	}
	<-done
	if r.q.Peek() != nil {
		t.Fatal("ring not empty after every entry was popped")
	}
	var a Answer
	for i := 0; i < 8; i++ {
		if !r.push(0, 0, &a) {
			t.Fatalf("push %d of 8 refused", i)
		}
	}
	if r.push(0, 0, &a) {
		t.Fatal("push into a full ring accepted")
	}
}

func TestTimerWheel(t *testing.T) {
	const ms = TimerTick
	start := int64(1000) * ms
	var fired []uint64
	firedAt := map[uint64]int64{}
	var now int64
	w := newTimerWheel(4096, start, func(kind uint8, arg uint64) {
		fired = append(fired, arg)
		firedAt[arg] = now
	})
	rng := rand.New(rand.NewPCG(1, 2))
	due := map[uint64]int64{}
	ids := map[uint64]timerID{}
	for i := uint64(0); i < 3000; i++ {
		d := start + rng.Int64N(3000*ms) + rng.Int64N(ms) // some beyond one revolution
		due[i] = d
		ids[i] = w.schedule(d, 1, i)
		if ids[i] == noTimer {
			t.Fatal("schedule failed with free nodes")
		}
	}
	cancelled := map[uint64]bool{}
	for i := uint64(0); i < 3000; i += 7 {
		w.cancel(ids[i])
		cancelled[i] = true
	}
	for now = start; now <= start+3100*ms; now += ms / 3 {
		w.advance(now)
	}
	for i, d := range due {
		at, ok := firedAt[i]
		switch {
		case cancelled[i] && ok:
			t.Fatalf("cancelled timer %d fired", i)
		case !cancelled[i] && !ok:
			t.Fatalf("timer %d due at %d never fired", i, d)
		case ok && at < d:
			t.Fatalf("timer %d fired at %d, before its due time %d", i, at, d)
		case ok && at > d+2*ms:
			t.Fatalf("timer %d fired at %d, more than 2 ticks after %d", i, at, d)
		}
	}
	if w.n != 0 {
		t.Fatalf("%d timers still live", w.n)
	}
	// A long stall: everything due fires in one advance, nothing early.
	fired = fired[:0]
	w.schedule(now+10*ms, 1, 1)
	w.schedule(now+5000*ms, 1, 2)
	now += 4000 * ms
	w.advance(now)
	if len(fired) != 1 || fired[0] != 1 {
		t.Fatalf("after a stall fired %v, want [1]", fired)
	}
	now += 1001 * ms
	w.advance(now)
	if len(fired) != 2 {
		t.Fatalf("long timer did not fire after its due time: %v", fired)
	}
	// Capacity is bounded.
	small := newTimerWheel(2, 0, func(uint8, uint64) {})
	small.schedule(ms, 1, 0)
	small.schedule(ms, 1, 0)
	if small.schedule(ms, 1, 0) != noTimer {
		t.Fatal("schedule beyond capacity succeeded")
	}
}

func TestTimerWheelAllocatesNothing(t *testing.T) {
	w := newTimerWheel(16, 0, func(uint8, uint64) {})
	now := int64(0)
	if a := testing.AllocsPerRun(1000, func() {
		id := w.schedule(now+5*TimerTick, 1, 1)
		w.schedule(now+TimerTick, 1, 2)
		w.cancel(id)
		now += 2 * TimerTick
		w.advance(now)
	}); a != 0 {
		t.Fatalf("%v allocations per schedule/cancel/advance", a)
	}
}

// next always names the earliest live timer's tick, through schedules,
// cancels and fires, so a sleeping worker wakes for it and not later.
func TestTimerWheelNext(t *testing.T) {
	const ms = TimerTick
	w := newTimerWheel(512, 0, func(uint8, uint64) {})
	if _, ok := w.next(); ok {
		t.Fatal("empty wheel has a next timer")
	}
	rng := rand.New(rand.NewPCG(3, 4))
	live := map[timerID]int64{}
	var now int64
	for round := 0; round < 2000; round++ {
		switch op := rng.IntN(3); {
		case op == 0 && len(live) < 500:
			at := now + rng.Int64N(3000*ms)
			id := w.schedule(at, 1, 0)
			live[id] = w.nodes[id].due
		case op == 1 && len(live) > 0:
			for id := range live {
				w.cancel(id)
				delete(live, id)
				break
			}
		default:
			now += rng.Int64N(50 * ms)
			w.advance(now)
			for id, due := range live {
				if due <= now/ms {
					delete(live, id)
				}
			}
		}
		want, any := int64(-1), false
		for _, due := range live {
			if !any || due < want {
				want, any = due, true
			}
		}
		got, ok := w.next()
		if ok != any || (ok && got != want) {
			t.Fatalf("round %d: next() = %d, %v; want %d, %v", round, got, ok, want, any)
		}
	}
}

type countingHelper struct {
	keys []string
	hs   []Handle
}

func (h *countingHelper) Request(hd Handle, key []byte) {
	h.keys = append(h.keys, string(key))
	h.hs = append(h.hs, hd)
}

// The parker on its own: a message set aside for a helper, answered, late
// answers and deadlines, with no worker, stage or port.
func TestParkerAlone(t *testing.T) {
	var fired []uint64
	p := newParker(2, 64, 8, 0, nil, func(kind uint8, arg uint64) { fired = append(fired, arg) })
	h := &countingHelper{}
	ref, err := p.register(h, Fallback{RetryAfter: 9})
	if err != nil || p.helper(ref) != 0 || p.helper(HelperRef{}) != -1 {
		t.Fatalf("register: %v, index %d", err, p.helper(ref))
	}
	if string(p.retry[0]) != "Retry-After: 9\r\n" {
		t.Errorf("fallback Retry-After %q", p.retry[0])
	}
	src := netip.MustParseAddrPort("192.0.2.9:5060")
	if r := p.park(0, 3, make([]byte, 65), src, src, [6]byte{}, 10, nil); r != parkTooLarge {
		t.Fatalf("a message larger than a slot: %d", r)
	}
	for i := 0; i < 2; i++ {
		if r := p.park(0, 3, []byte("msg"), src, src, [6]byte{}, int64(5+i)*TimerTick, []byte{'k', byte('0' + i)}); r != parkOK {
			t.Fatalf("park %d: %d", i, r)
		}
	}
	if r := p.park(0, 3, []byte("msg"), src, src, [6]byte{}, 10*TimerTick, nil); r != parkFull || p.parked() != 2 {
		t.Fatalf("third park in a pool of two: %d, parked %d", r, p.parked())
	}
	if len(h.keys) != 2 || h.keys[1] != "k1" {
		t.Fatalf("helper asked %q", h.keys)
	}
	p.rings[0].bell = &bell{fd: -1}
	var a Answer
	a.SetBytes([]byte("found"))
	if !h.hs[0].Answer(&a) {
		t.Fatal("answer refused")
	}
	e := p.rings[0].q.Peek()
	s, ok := p.answered(e)
	if !ok || s.stage != 3 || s.helper != 0 || string(e.ans.Bytes()) != "found" {
		t.Fatalf("answered: %v %+v", ok, s)
	}
	p.rings[0].q.Advance()
	p.release(e.slot)
	if _, ok := p.answered(&ringEntry{slot: e.slot, gen: e.gen}); ok {
		t.Fatal("an answer for a released slot was taken")
	}
	p.wheel.advance(7 * TimerTick)
	if len(fired) != 1 {
		t.Fatalf("%d deadlines fired, want the second message's", len(fired))
	}
	if slot, ok := p.timedOut(fired[0]); !ok || slot != h.hs[1].slot {
		t.Fatalf("timed out slot %d %v", slot, ok)
	}
}
