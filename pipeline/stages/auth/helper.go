package auth

import (
	"context"
	"encoding/binary"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"sipedge/pipeline"
	"sipedge/sipcore"
)

// Answer statuses. The answer goes back to the auth stage that parked
// the message and to no other, so it needs no tag.
const (
	answerFound    int32 = 0
	answerNotFound int32 = 1
	answerError    int32 = 2
)

// Answer data layout: Has, MD5 hex, SHA-256 hex, invalidation seq.
const (
	ansHas    = 0
	ansMD5    = 1
	ansSHA    = ansMD5 + 32
	ansSeq    = ansSHA + 64
	ansLength = ansSeq + 8
)

func encodeAnswer(a *pipeline.Answer, status int32, e *Entry, seq uint64) {
	a.Status = status
	a.Len = ansLength
	a.Data[ansHas] = e.Has
	copy(a.Data[ansMD5:ansSHA], e.MD5[:])
	copy(a.Data[ansSHA:ansSeq], e.SHA256[:])
	binary.LittleEndian.PutUint64(a.Data[ansSeq:], seq)
}

// decodeAnswer reads an answer of this package's helper; a malformed one
// is a store error.
func decodeAnswer(a *pipeline.Answer, e *Entry) (status int32, seq uint64) {
	if a == nil || a.Len != ansLength {
		return answerError, 0
	}
	e.Has = a.Data[ansHas]
	copy(e.MD5[:], a.Data[ansMD5:ansSHA])
	copy(e.SHA256[:], a.Data[ansSHA:ansSeq])
	return a.Status, binary.LittleEndian.Uint64(a.Data[ansSeq:])
}

// request is one lookup, copied whole into the helper's queue (a buffered
// channel of values: sending allocates nothing).
type request struct {
	h     pipeline.Handle
	k     userKey
	seq   uint64
	start time.Time
	n     uint16
	user  [sipcore.MaxDigestField]byte
}

type result struct {
	h     pipeline.Handle
	start time.Time
	ans   pipeline.Answer
	// fill is set on one result per lookup: the answer goes into the
	// worker's cache through its fill ring even when it comes too late
	// for the message that asked.
	fill bool
	k    userKey
}

// waiter is a parked message whose lookup was merged into one already
// under way for the same user.
type waiter struct {
	h     pipeline.Handle
	start time.Time
}

// fillEntry is one store answer on its way into a worker's cache.
type fillEntry struct {
	k      userKey
	status int32
	seq    uint64
	e      Entry
}

// helper is one worker's pipeline.Helper: Request queues the lookup for a
// pool of goroutines; one goroutine hands every answer back, as the
// worker's answer ring requires a single producer.
type helper struct {
	c       *core
	reqs    chan request
	results chan result

	// inflight merges concurrent lookups of one user: the first does the
	// lookup, the others wait for its answer (helper goroutines only).
	mu       sync.Mutex
	inflight map[userKey][]waiter

	lookups, notFound, errs, late, queueFull, ringFull atomic.Uint64
	merged, fillsLost                                  atomic.Uint64
	latency                                            pipeline.Latency
}

func (c *core) startHelper() *helper {
	if c.help != nil {
		return c.help
	}
	a := c.a
	h := &helper{c: c, reqs: make(chan request, a.cfg.QueueLen), results: make(chan result, a.cfg.QueueLen),
		inflight: map[userKey][]waiter{}}
	c.help = h
	a.wg.Add(a.cfg.Concurrency + 1)
	for i := 0; i < a.cfg.Concurrency; i++ {
		go h.lookupLoop()
	}
	go h.answerLoop()
	return h
}

// Request implements pipeline.Helper. It never blocks: with the queue full
// the message waits for its deadline and gets the fallback.
func (h *helper) Request(hd pipeline.Handle, key []byte) {
	r := request{h: hd, k: h.c.a.hash.key(key), seq: h.c.a.seq.Load(), start: time.Now()}
	r.n = uint16(copy(r.user[:], key))
	select {
	case h.reqs <- r:
	default:
		h.queueFull.Add(1)
	}
}

func (h *helper) lookupLoop() {
	a := h.c.a
	defer a.wg.Done()
	for {
		var r request
		select {
		case r = <-h.reqs:
		case <-a.done:
			return
		}
		h.mu.Lock()
		if ws, ok := h.inflight[r.k]; ok {
			h.inflight[r.k] = append(ws, waiter{r.h, r.start})
			h.mu.Unlock()
			h.merged.Add(1)
			continue
		}
		h.inflight[r.k] = nil
		h.mu.Unlock()
		h.lookups.Add(1)
		ctx, cancel := context.WithTimeout(context.Background(), a.cfg.LookupTimeout)
		t0 := time.Now()
		e, err := a.cfg.Store.Lookup(ctx, a.cfg.Realm, string(r.user[:r.n]))
		cancel()
		h.latency.Observe(time.Since(t0))
		res := result{h: r.h, start: r.start, fill: true, k: r.k}
		switch {
		case err == nil:
			encodeAnswer(&res.ans, answerFound, &e, r.seq)
		case errors.Is(err, ErrNotFound):
			h.notFound.Add(1)
			encodeAnswer(&res.ans, answerNotFound, &Entry{}, r.seq)
		default:
			h.errs.Add(1)
			encodeAnswer(&res.ans, answerError, &Entry{}, r.seq)
		}
		h.mu.Lock()
		ws := h.inflight[r.k]
		delete(h.inflight, r.k)
		h.mu.Unlock()
		if !h.send(&res) {
			return
		}
		res.fill = false
		for _, w := range ws {
			res.h, res.start = w.h, w.start
			if !h.send(&res) {
				return
			}
		}
	}
}

// send hands res to the answer goroutine; false when the auth is closing.
func (h *helper) send(res *result) bool {
	select {
	case h.results <- *res:
		return true
	case <-h.c.a.done:
		return false
	}
}

func (h *helper) answerLoop() {
	a := h.c.a
	defer a.wg.Done()
	for {
		select {
		case r := <-h.results:
			if time.Since(r.start) > a.cfg.Deadline {
				h.late.Add(1) // the worker already gave the fallback
			}
			if !r.h.Answer(&r.ans) {
				h.ringFull.Add(1)
			}
			if r.fill {
				h.fillCache(&r)
			}
		case <-a.done:
			return
		}
	}
}

// fillCache queues the answer of a lookup for the worker's cache. The
// worker applies it at its next batch whether or not the message that
// asked is still waiting: under a slow store (or after a reconnection
// empties every cache) the answers that come after the deadline are what
// make the next request of the same user a hit instead of another lookup
// that times out too. The answer goroutine is the ring's one producer.
func (h *helper) fillCache(r *result) {
	var e Entry
	status, seq := decodeAnswer(&r.ans, &e)
	if status == answerError {
		return
	}
	f := fillEntry{k: r.k, status: status, seq: seq, e: e}
	if !h.c.fills.Push(&f) {
		h.fillsLost.Add(1)
	}
}
