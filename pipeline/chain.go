package pipeline

import (
	"errors"
	"fmt"
)

// Per-stage counters of the chain: the fixed part, then the stage's own
// drop reasons, then its own declared counters.
const (
	sIn       = 0
	sVerdict  = 1 // numVerdicts entries
	sNs       = sVerdict + int(numVerdicts)
	sSamples  = sNs + 1
	sOwnDrops = sSamples + 1
)

// chain runs a message through one worker's stages to a verdict and counts
// what each stage decided. It knows nothing of ports or parking: the loop
// gives it messages and handles the verdict it returns.
type chain struct {
	stages   []Stage
	defs     []*StageDef
	resumers []Resumer // by stage; nil where the stage does not park
	starts   []BatchStarter
	refusers []refuserAt // in chain order
	base     []int       // by stage: its first counter in cnt
	cnt      Counters

	sampleMask uint64
	seq        uint64
}

// chainSlots is how many counters stages with defs take.
func chainSlots(defs []*StageDef) int {
	n := 0
	for _, d := range defs {
		n += sOwnDrops + len(d.Drops) + CounterSlots(d.Counters)
	}
	return n
}

// newChain makes every stage of makers for the worker env describes; cnt
// must hold chainSlots of their defs.
func newChain(makers []StageMaker, cnt Counters, worker int, p *parker) (*chain, error) {
	if len(makers) == 0 {
		return nil, errors.New("pipeline: a worker needs at least one stage")
	}
	ch := &chain{cnt: cnt}
	seen := map[string]bool{}
	off := 0
	for _, m := range makers {
		d := m.Def()
		if d == nil || d.Name == "" {
			return nil, errors.New("pipeline: a stage without a name (StageDef.Name)")
		}
		if seen[d.Name] {
			return nil, fmt.Errorf("pipeline: stage %q twice in the chain", d.Name)
		}
		seen[d.Name] = true
		own := sOwnDrops + len(d.Drops)
		env := &Env{Worker: worker, Counters: cnt.sub(off+own, CounterSlots(d.Counters)), Drops: cnt.sub(off+sOwnDrops, len(d.Drops)), def: d, p: p}
		s, err := m.NewStage(env)
		if err != nil {
			return nil, fmt.Errorf("pipeline: stage %q: %w", d.Name, err)
		}
		r, _ := s.(Resumer)
		if d.Parks && r == nil {
			return nil, fmt.Errorf("pipeline: stage %q declares Parks but has no Resume method", d.Name)
		}
		if b, ok := s.(BatchStarter); ok {
			ch.starts = append(ch.starts, b)
		}
		if r, ok := s.(Refuser); ok {
			ch.refusers = append(ch.refusers, refuserAt{len(ch.stages), r})
		}
		ch.stages = append(ch.stages, s)
		ch.defs = append(ch.defs, d)
		ch.resumers = append(ch.resumers, r)
		ch.base = append(ch.base, off)
		off += own + CounterSlots(d.Counters)
	}
	return ch, nil
}

// startBatch runs the stages' per-batch hooks.
func (ch *chain) startBatch(now int64, lastRx int) {
	for _, b := range ch.starts {
		b.StartBatch(now, lastRx)
	}
}

// run runs c through the stages from index from and returns the verdict
// and the index of the stage that gave it. A stage's own drop is counted
// here, under the stage.
func (ch *chain) run(c *Ctx, from int) (Verdict, int) {
	ch.seq++
	sample := ch.sampleMask != 0 && ch.seq&ch.sampleMask == 0
	cnt := ch.cnt.v
	v := Continue
	i := from
	for ; i < len(ch.stages); i++ {
		base := ch.base[i]
		cnt[base+sIn]++
		if sample {
			t0 := Nanotime()
			v = ch.stages[i].Process(c)
			cnt[base+sNs] += uint64(Nanotime() - t0)
			cnt[base+sSamples]++
		} else {
			v = ch.stages[i].Process(c)
		}
		if v != Continue {
			return ch.end(c, v, i), i
		}
		cnt[base+sVerdict]++
	}
	return v, len(ch.stages) - 1
}

// resume gives the message parked by stage i back to that stage's Resume,
// then runs it through the stages after it.
func (ch *chain) resume(c *Ctx, i int) (Verdict, int) {
	base := ch.base[i]
	ch.cnt.v[base+sIn]++
	v := ch.resumers[i].Resume(c)
	if v != Continue {
		return ch.end(c, v, i), i
	}
	ch.cnt.v[base+sVerdict]++
	if i+1 == len(ch.stages) {
		return Continue, i
	}
	return ch.run(c, i+1)
}

// refuserAt is a stage that undoes its work on requests refused later.
type refuserAt struct {
	i int
	r Refuser
}

// refused tells the Refusers before stage i that the request in c was
// answered with the failure c's transmit buffer holds (Refuser).
func (ch *chain) refused(c *Ctx, i int) {
	if len(ch.refusers) == 0 || ch.refusers[0].i >= i || !c.Parsed || !c.Msg.IsRequest {
		return
	}
	st := c.replyStatus()
	if st < 300 {
		return
	}
	for _, r := range ch.refusers {
		if r.i >= i {
			break
		}
		r.r.Refused(c, st)
	}
}

// end counts the verdict v of stage i other than Continue.
func (ch *chain) end(c *Ctx, v Verdict, i int) Verdict {
	if v >= numVerdicts {
		v = c.Drop(DropNoVerdict)
	}
	if v == Respond && c.outReady {
		ch.refused(c, i)
	}
	base := ch.base[i]
	ch.cnt.v[base+sVerdict+int(v)]++
	if v == Drop && c.own > 0 {
		if c.own <= len(ch.defs[i].Drops) {
			ch.cnt.v[base+sOwnDrops+c.own-1]++
		} else {
			c.Drop(DropNoVerdict) // an undeclared reason: a stage bug
		}
	}
	return v
}

// Solo runs one stage made outside a worker, counting what it decides as a
// worker's chain would and publishing after every message: for the tests
// and benchmarks of a stage on its own (no port, no parking; a stage that
// answers needs a worker).
type Solo struct {
	ch  *chain
	all Counters
}

// NewSolo makes m's stage for worker id worker.
func NewSolo(worker int, m StageMaker) (*Solo, error) {
	d := m.Def()
	if d == nil {
		return nil, errors.New("pipeline: NewSolo: no StageDef")
	}
	all := NewCounters(chainSlots([]*StageDef{d}))
	ch, err := newChain([]StageMaker{m}, all, worker, nil)
	if err != nil {
		return nil, err
	}
	return &Solo{ch: ch, all: all}, nil
}

// Stage is the stage made.
func (s *Solo) Stage() Stage { return s.ch.stages[0] }

// Process runs c through the stage and publishes the counts.
func (s *Solo) Process(c *Ctx) Verdict {
	c.own = 0
	v, _ := s.ch.run(c, 0)
	s.all.Publish()
	return v
}

// Publish publishes the counts (after a StartBatch or other direct use).
func (s *Solo) Publish() { s.all.Publish() }
