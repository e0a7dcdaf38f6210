package pipeline

import (
	"context"
	"sync/atomic"

	"sipedge/pipeline/internal/spsc"
)

// HelperKeyMax bounds the key bytes FuncHelper carries per request.
const HelperKeyMax = 256

type helperReq struct {
	h   Handle
	n   uint16
	key [HelperKeyMax]byte
}

// FuncHelper is a ready-made Helper for one worker: Request copies the key
// into a single-producer single-consumer ring (no lock, no channel while
// the helper is busy) and one goroutine (Run) calls Lookup for each request
// in order and answers it. The worker only signals the goroutine, through a
// channel, when the goroutine said it was going to sleep: under load the
// hot path touches two atomics per parked message and nothing else.
//
// Lookup may block on I/O: it runs on the helper's goroutine, never on the
// worker's. For concurrency, give the worker several helpers. A stage may
// also call Request itself with the zero Handle for work that parks no
// message (a fire-and-forget notice): Lookup runs and nothing is answered.
type FuncHelper struct {
	Lookup func(key []byte, a *Answer)

	reqs     *spsc.Ring[helperReq] // the worker produces, Run consumes
	sleeping atomic.Bool
	wake     chan struct{}

	// Refused counts requests the helper could not take (queue full or key
	// longer than HelperKeyMax); their messages get the fallback.
	Refused atomic.Uint64
	// Unanswered counts answers the worker's ring refused.
	Unanswered atomic.Uint64
}

// NewFuncHelper returns a helper with room for queue outstanding requests
// (rounded up to a power of two).
func NewFuncHelper(queue int, lookup func(key []byte, a *Answer)) *FuncHelper {
	return &FuncHelper{Lookup: lookup, reqs: spsc.New[helperReq](queue), wake: make(chan struct{}, 1)}
}

// Request implements Helper. It runs on the worker's goroutine.
func (f *FuncHelper) Request(h Handle, key []byte) {
	r := f.reqs.Slot()
	if r == nil || len(key) > HelperKeyMax {
		f.Refused.Add(1)
		return
	}
	r.h = h
	r.n = uint16(copy(r.key[:], key))
	f.reqs.Commit()
	if f.sleeping.Load() {
		select {
		case f.wake <- struct{}{}:
		default:
		}
	}
}

// Run answers requests until ctx is done. Run it on one goroutine only:
// it is the single consumer of the request ring and the single producer of
// the worker's answer ring.
func (f *FuncHelper) Run(ctx context.Context) {
	var a Answer
	for {
		r := f.reqs.Peek()
		if r == nil {
			// Announce sleep, then look again: a request pushed before the
			// worker saw the flag is found here, one pushed after gets a wake.
			f.sleeping.Store(true)
			if f.reqs.Empty() {
				select {
				case <-f.wake:
				case <-ctx.Done():
					f.sleeping.Store(false)
					return
				}
			}
			f.sleeping.Store(false)
			continue
		}
		a = Answer{}
		f.Lookup(r.key[:r.n], &a)
		handle := r.h
		f.reqs.Advance()
		if handle.ring != nil && !handle.Answer(&a) {
			f.Unanswered.Add(1)
		}
	}
}
