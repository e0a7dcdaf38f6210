package pipeline

import (
	"fmt"
	"hash/fnv"
	"log/slog"
)

// panicLogEvery is how often (ns) a worker logs the panics of its stages:
// a crafted datagram that makes a stage panic can be sent at line rate,
// and the log must not become the next thing to fall over.
const panicLogEvery = 60_000_000_000

// panicLog is one worker's rate limit of panic reports.
type panicLog struct {
	last       int64 // Ctx.Now of the last report; 0 none yet
	suppressed uint64
}

// run runs the message in w.ctx through the chain, from the start (resume
// < 0) or through the Resume of stage resume. A panic in a stage drops
// that message (DropPanic), is logged at most once a minute, and leaves
// the worker running: one bad datagram must not stop a core.
func (w *Worker) run(resume int) (v Verdict, at int) {
	defer func() {
		if r := recover(); r != nil {
			v, at = w.recovered(r), 0
		}
	}()
	if resume < 0 {
		return w.chain.run(&w.ctx, 0)
	}
	return w.chain.resume(&w.ctx, resume)
}

// recovered counts and reports panic value r of the message in w.ctx and
// returns the verdict that drops it.
func (w *Worker) recovered(r any) Verdict {
	c := &w.ctx
	c.outReady = false // whatever a stage half built is not sent
	pl := &w.panics
	if pl.last != 0 && c.Now-pl.last < panicLogEvery {
		pl.suppressed++
		return c.Drop(DropPanic)
	}
	h := fnv.New64a()
	h.Write(c.Buf)
	log := w.cfg.Log
	if log == nil {
		log = slog.Default()
	}
	log.Error("pipeline: a stage panicked; the message is dropped (counted as drop reason panic) and the worker goes on: please report this with the datagram",
		"worker", w.cfg.ID, "panic", fmt.Sprint(r), "datagram_fnv64a", fmt.Sprintf("%016x", h.Sum64()),
		"datagram_bytes", len(c.Buf), "src", c.Src.String(), "suppressed_since_last", pl.suppressed)
	pl.last, pl.suppressed = max(c.Now, 1), 0
	return c.Drop(DropPanic)
}
