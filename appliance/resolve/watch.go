package resolve

import (
	"context"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Entry is one configured server: a name and what the configuration adds
// to the records.
type Entry struct {
	Name Name
	// Weight multiplies the targets' weights: an SRV record's weight, or
	// 1 for a target without one.
	Weight float64
	// Priority is the priority of targets that do not come from SRV
	// (which carry their record's).
	Priority uint16
}

// Member is one target of the merged set, weighted and ready to publish.
type Member struct {
	Addr     netip.AddrPort
	Priority uint16
	Weight   float64
	// Entry is the index of the entry it came from.
	Entry int
}

// lingering is a member that left the DNS, kept with weight 0 until.
type lingering struct {
	m     Member
	until time.Time
}

// zeroWeight is what an SRV weight of 0 counts as: RFC 2782 gives such a
// record "a very small chance" beside records with a weight, and an equal
// chance among records that all have 0.
const zeroWeight = 1.0 / 256

// Stats count a Watcher's work, for /metrics.
type Stats struct {
	// Lookups, Failures and Empty count resolutions of DNS names: all,
	// failed (error, timeout) and empty (ErrNoTargets). A failure or an
	// empty answer keeps the name's last good targets.
	Lookups, Failures, Empty uint64
	// Publishes counts sets handed to publish (only when they changed).
	Publishes uint64
}

// Watcher keeps the targets of a list of entries fresh: each DNS name is
// looked up again when its TTL runs out (retried after the floor when a
// lookup fails), and every time the merged set changes it is handed to
// publish whole. Numeric entries are resolved once.
type Watcher struct {
	r       *Resolver
	entries []Entry
	publish func([]Member) error
	log     *slog.Logger

	mu      sync.Mutex // state below; held across lookups by Run and ResolveAll
	last    [][]Target // by entry: last good targets (nil: never resolved)
	due     []time.Time
	pubOnce bool // current was published (an empty set is a set)

	curMu   sync.Mutex // current alone, so that readers never wait on a lookup
	current []Member
	gone    map[netip.AddrPort]lingering
	kick    chan struct{}

	lookups, failures, empty, publishes atomic.Uint64
}

// NewWatcher makes the watcher of entries. publish gets every changed
// merged set; an error from it (a set the consumer refuses) is logged and
// the set is offered again after the next lookup.
func NewWatcher(r *Resolver, entries []Entry, publish func([]Member) error, log *slog.Logger) *Watcher {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Watcher{r: r, entries: slices.Clone(entries), publish: publish, log: log,
		last: make([][]Target, len(entries)), due: make([]time.Time, len(entries)), kick: make(chan struct{}, 1),
		gone: map[netip.AddrPort]lingering{}}
}

// Stats returns the counts so far.
func (w *Watcher) Stats() Stats {
	return Stats{Lookups: w.lookups.Load(), Failures: w.failures.Load(), Empty: w.empty.Load(), Publishes: w.publishes.Load()}
}

// Current is the set published last.
func (w *Watcher) Current() []Member {
	w.curMu.Lock()
	defer w.curMu.Unlock()
	return slices.Clone(w.current)
}

// Dynamic reports whether any entry needs the DNS (Run has work to do).
func (w *Watcher) Dynamic() bool {
	for _, e := range w.entries {
		if !e.Name.Static() {
			return true
		}
	}
	return false
}

// ResolveAll looks up every entry now and publishes the merged set of
// what resolved; failures are logged and counted, and the names that
// failed are retried by Run after the TTL floor. It returns the set.
func (w *Watcher) ResolveAll(ctx context.Context) []Member {
	w.mu.Lock()
	defer w.mu.Unlock()
	now := time.Now()
	for i := range w.entries {
		w.resolveLocked(ctx, i, now)
	}
	w.publishLocked(now)
	return w.Current()
}

// Refresh makes Run look every DNS name up again now (an operator's
// request, tests).
func (w *Watcher) Refresh() {
	w.mu.Lock()
	for i := range w.due {
		w.due[i] = time.Time{}
	}
	w.mu.Unlock()
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run refreshes the entries as their TTLs run out until ctx ends.
func (w *Watcher) Run(ctx context.Context) {
	if !w.Dynamic() {
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		w.mu.Lock()
		now := time.Now()
		changed := false
		for i := range w.entries {
			if !w.entries[i].Name.Static() && !now.Before(w.due[i]) {
				changed = w.resolveLocked(ctx, i, now) || changed
			}
		}
		if changed || w.lingerDueLocked(now) {
			w.publishLocked(now)
		}
		next := time.Time{}
		for i, d := range w.due {
			if !w.entries[i].Name.Static() && (next.IsZero() || d.Before(next)) {
				next = d
			}
		}
		for _, g := range w.gone {
			if g.until.Before(next) {
				next = g.until
			}
		}
		w.mu.Unlock()
		t.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-w.kick:
		}
	}
}

// resolveLocked looks entry i up and reports whether its targets changed.
// A failure keeps the last good targets and retries after the floor.
func (w *Watcher) resolveLocked(ctx context.Context, i int, now time.Time) bool {
	e := w.entries[i]
	if e.Name.Static() {
		if w.last[i] != nil {
			return false
		}
		res, _ := w.r.Resolve(ctx, e.Name) // cannot fail: no lookup
		w.last[i] = res.Targets
		return true
	}
	w.lookups.Add(1)
	qctx, cancel := context.WithTimeout(ctx, 4*w.r.cfg.Timeout)
	res, err := w.r.Resolve(qctx, e.Name)
	cancel()
	if err != nil && ctx.Err() != nil {
		return false // stopping: not the DNS's failure
	}
	if err != nil {
		w.due[i] = now.Add(w.r.cfg.TTLFloor)
		kept := len(w.last[i])
		if isEmpty(err) {
			w.empty.Add(1)
			w.log.Warn("DNS lookup found no targets: the last good ones stay", "name", e.Name.Input, "kept", kept, "err", err.Error())
		} else {
			w.failures.Add(1)
			w.log.Warn("DNS lookup failed: the last good targets stay", "name", e.Name.Input, "kept", kept, "err", err.Error())
		}
		return false
	}
	w.due[i] = now.Add(res.TTL)
	if slices.Equal(res.Targets, w.last[i]) {
		return false
	}
	w.log.Info("DNS targets changed", "name", e.Name.Input, "targets", len(res.Targets), "ttl", res.TTL.String())
	w.last[i] = res.Targets
	return true
}

func isEmpty(err error) bool { return errors.Is(err, ErrNoTargets) }

// merged is every entry's targets as members; an address listed by two
// entries keeps its first listing.
func (w *Watcher) merged() []Member {
	var out []Member
	seen := map[netip.AddrPort]bool{}
	for i, ts := range w.last {
		e := w.entries[i]
		for _, t := range ts {
			if seen[t.Addr] {
				continue
			}
			seen[t.Addr] = true
			m := Member{Addr: t.Addr, Priority: e.Priority, Weight: e.Weight, Entry: i}
			if t.FromSRV {
				m.Priority = t.Priority
				if t.Weight == 0 {
					m.Weight *= zeroWeight
				} else {
					m.Weight *= float64(t.Weight)
				}
			}
			out = append(out, m)
		}
	}
	return out
}

// lingerDueLocked reports whether a lingering member's time is up.
func (w *Watcher) lingerDueLocked(now time.Time) bool {
	for _, g := range w.gone {
		if !now.Before(g.until) {
			return true
		}
	}
	return false
}

// withLingering adds to fresh the members that left the DNS less than
// Linger ago, with weight 0, and notes those leaving now.
func (w *Watcher) withLingering(fresh []Member, now time.Time) []Member {
	in := make(map[netip.AddrPort]bool, len(fresh))
	for _, m := range fresh {
		in[m.Addr] = true
	}
	if linger := w.r.cfg.Linger; linger > 0 {
		for _, m := range w.current {
			if !in[m.Addr] && m.Weight > 0 {
				w.log.Info("target left the DNS: kept for the calls it carries, no new calls", "target", m.Addr.String(), "name", w.entries[m.Entry].Name.Input, "for", linger.String())
				m.Weight = 0
				w.gone[m.Addr] = lingering{m: m, until: now.Add(linger)}
			}
		}
	}
	var kept []Member
	for a, g := range w.gone {
		if in[a] || !now.Before(g.until) {
			delete(w.gone, a)
			continue
		}
		kept = append(kept, g.m)
	}
	slices.SortFunc(kept, func(a, b Member) int { return a.Addr.Compare(b.Addr) })
	return append(fresh, kept...)
}

func (w *Watcher) publishLocked(now time.Time) {
	next := w.withLingering(w.merged(), now)
	if w.pubOnce && slices.Equal(next, w.current) {
		return
	}
	if err := w.publish(next); err != nil {
		w.log.Error("resolved set refused: the running one stays", "err", err.Error())
		return
	}
	w.curMu.Lock()
	w.current, w.pubOnce = next, true
	w.curMu.Unlock()
	w.publishes.Add(1)
}
