package media

import (
	"context"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/stages/media/ng"
)

// Relays is the set of media relays. A call's relay is picked from its
// Call-ID by the dispatcher's weighted rendezvous hashing
// (pipeline.BackendSet.Pick): every node of a cluster picks the same relay
// for a call without sharing any state, and a relay that goes down moves
// only its own calls. The set itself is a pipeline.Backends, so workers
// read it as a lock-free snapshot once per batch. Replace swaps in a new
// set (relays named in the DNS, refreshed by TTL) keeping the state of
// the relays it keeps.
type Relays struct {
	set   *pipeline.Backends
	tab   atomic.Pointer[relayTable]
	mu    sync.Mutex // serialises Replace
	stats *Stats
}

// relayTable is the relays' state objects, immutable once published: the
// helpers and the pinger look relays up without a lock.
type relayTable struct {
	byAddr map[netip.AddrPort]*Relay
	list   []*Relay
}

// Relay is one relay's state and counts.
type Relay struct {
	Addr netip.AddrPort
	// Calls estimates the calls anchored on the relay: offers it
	// anchored for a new call less deletes it confirmed.
	Calls atomic.Int64
	// Orphaned counts calls that were in progress on the relay when it
	// went down (their media is lost unless it comes back).
	Orphaned atomic.Uint64
	// Downs counts the times it was marked down.
	Downs atomic.Uint64
	up    atomic.Bool
	// lastOK is when (unix ns) the relay last answered an offer, answer
	// or delete: a relay that answers calls is alive even when its pings
	// are late behind them (marking an overloaded relay down would turn
	// slowness into an outage).
	lastOK atomic.Int64

	pingsOK, pingsFailed atomic.Uint64
	fails, oks           int // pinger goroutine only
}

func newRelays(specs []pipeline.BackendSpec, st *Stats) (*Relays, error) {
	b, err := pipeline.NewBackends(specs)
	if err != nil {
		return nil, err
	}
	r := &Relays{set: b, stats: st}
	r.tab.Store(newTable(specs, nil))
	return r, nil
}

// newTable makes the state objects of specs, taking over old's for the
// addresses it keeps (their health, pings and calls go on); new relays
// start up, as pipeline.Backends counts them.
func newTable(specs []pipeline.BackendSpec, old *relayTable) *relayTable {
	t := &relayTable{byAddr: make(map[netip.AddrPort]*Relay, len(specs))}
	for _, s := range specs {
		a := netip.AddrPortFrom(s.Addr.Addr().Unmap(), s.Addr.Port())
		x := old.get(a)
		if x == nil {
			x = &Relay{Addr: a}
			x.up.Store(true)
		}
		t.byAddr[a] = x
		t.list = append(t.list, x)
	}
	return t
}

func (t *relayTable) get(a netip.AddrPort) *Relay {
	if t == nil {
		return nil
	}
	return t.byAddr[a]
}

// Replace makes specs the relay set (a DNS refresh): relays it keeps keep
// their up/down state, ping counts and calls; new ones start up, as at
// start; a relay it drops is logged with the calls it still carries (they
// keep their media as long as the relay runs, but their answers and
// deletes now go to the relay their Call-ID picks in the new set).
func (r *Relays) Replace(specs []pipeline.BackendSpec, logf func(string, ...any)) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.tab.Load()
	// The table first: a worker that picks a new relay from the new set
	// must find its state object when the relay answers.
	t := newTable(specs, old)
	r.tab.Store(t)
	if err := r.set.Replace(specs); err != nil {
		r.tab.Store(old)
		return err
	}
	for _, x := range old.list {
		if t.byAddr[x.Addr] == nil {
			logf("media relay left the relay set: no new calls; answers and deletes of its calls go to the relays their Call-IDs pick now", "relay", x.Addr.String(), "calls_in_progress", x.Calls.Load())
		}
	}
	return nil
}

// Load is the current snapshot, for workers.
func (r *Relays) Load() *pipeline.BackendSet { return r.set.Load() }

// List returns the relays in the set's order.
func (r *Relays) List() []*Relay { return r.tab.Load().list }

// Relay returns the relay at addr, nil when there is none.
func (r *Relays) Relay(addr netip.AddrPort) *Relay { return r.tab.Load().get(addr) }

// Up reports whether the relay is up.
func (x *Relay) Up() bool { return x.up.Load() }

// Pings returns the pings answered and failed.
func (x *Relay) Pings() (ok, failed uint64) { return x.pingsOK.Load(), x.pingsFailed.Load() }

// UpCount is how many relays are up.
func (r *Relays) UpCount() int {
	n := 0
	for _, x := range r.List() {
		if x.up.Load() {
			n++
		}
	}
	return n
}

// SetUp marks a relay up or down (pinger, operator, tests), reporting
// the calls it carried when it goes down. It returns false for an
// unknown address.
func (r *Relays) SetUp(addr netip.AddrPort, up bool, logf func(string, ...any)) bool {
	x := r.Relay(addr)
	if x == nil || !r.set.SetUp(addr, up) {
		return false
	}
	if x.up.Swap(up) == up {
		return true
	}
	if up {
		logf("media relay up", "relay", addr.String())
		return true
	}
	x.Downs.Add(1)
	n := x.Calls.Swap(0)
	if n > 0 {
		x.Orphaned.Add(uint64(n))
	}
	logf("media relay down: new calls go to the other relays; calls in progress on it lose their media", "relay", addr.String(), "calls_in_progress", n)
	return true
}

// run pings every relay each interval until ctx ends.
func (r *Relays) run(ctx context.Context, p Ping, local netip.Addr, logf func(string, ...any)) error {
	cl, err := ng.NewClient(netip.AddrPortFrom(local, 0), "p")
	if err != nil {
		return err
	}
	defer cl.Close()
	cl.Retry = p.Timeout
	var enc ng.Enc
	dec := ng.NewDecoded(64)
	t := time.NewTicker(p.Interval)
	defer t.Stop()
	for {
		for _, x := range r.List() {
			cl.Begin(&enc)
			enc.Dict()
			enc.KS("command", "ping")
			enc.End()
			err := cl.Do(x.Addr, enc.B, time.Now().Add(p.Timeout), dec)
			ok := false
			if err == nil {
				res, _ := ng.Result(dec)
				ok = string(res) == "pong"
			}
			r.observe(x, ok, p, logf)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func (r *Relays) observe(x *Relay, ok bool, p Ping, logf func(string, ...any)) {
	if ok {
		x.pingsOK.Add(1)
		x.fails = 0
		x.oks++
		if !x.up.Load() && x.oks >= p.UpAfter {
			r.SetUp(x.Addr, true, logf)
		}
		return
	}
	x.pingsFailed.Add(1)
	if time.Now().UnixNano()-x.lastOK.Load() < int64(p.Interval) {
		return // late behind calls it answered: busy, not dead
	}
	x.oks = 0
	x.fails++
	if x.up.Load() && x.fails >= p.DownAfter {
		r.SetUp(x.Addr, false, logf)
	}
}

// Stats are the ng helpers' counts, shared by every worker's helpers
// (atomics: the helpers are off the hot path).
type Stats struct {
	// Requests by ng command: offer, answer, delete.
	Requests [numOps]atomic.Uint64
	// Errors by reason (fallbackWhy, then "delete-failed").
	Errors [numWhy]atomic.Uint64
	// Latency of answered requests.
	Latency pipeline.Latency
	// Lingered counts answers and deletes a relay that left the DNS (and
	// lingers) took after the Call-ID's relay did not know the call.
	Lingered atomic.Uint64
}

// Ops and error reasons as the exporter labels them.
var (
	OpNames  = [numOps]string{"offer", "answer", "delete"}
	WhyNames = append(append([]string{}, fallbackWhy...), "delete-failed")
)

const (
	opOffer = iota
	opAnswer
	opDelete
	numOps
)

const (
	whyDeleteFailed = len(fallbackWhyConst)
	numWhy          = whyDeleteFailed + 1
)

// fallbackWhyConst has fallbackWhy's length as a constant.
var fallbackWhyConst [whyUnknownCall + 1]struct{}

func newStats() *Stats { return &Stats{} }
