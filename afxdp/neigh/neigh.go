package neigh

import (
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Config tunes a Table.
type Config struct {
	// Interval is how often the refresher re-reads routes and neighbours
	// (default 1s). A miss is answered within about one interval.
	Interval time.Duration
	// MaxEntries bounds the destinations the table tracks (default 4096);
	// further misses are dropped and counted until entries expire.
	MaxEntries int
	// MissQueue is the capacity of the miss queue between workers and the
	// refresher (default 256); misses beyond it in one interval are dropped,
	// and the worker's next miss for the same destination queues it again.
	MissQueue int
	// Idle is how many refreshes an unresolved destination stays wanted
	// without a new miss (default 60).
	Idle int
}

// Stats are the refresher's counters.
type Stats struct {
	Refreshes uint64 // completed refresh rounds
	Entries   uint64 // destinations with a MAC in the current snapshot
	Wanted    uint64 // destinations tracked
	Overflow  uint64 // misses dropped because MaxEntries destinations are tracked
	Errors    uint64 // netlink failures (the previous snapshot stays)
	LastError string
}

// Table maps destinations to next-hop MACs. Lookup may be called from any
// number of goroutines; Start/Stop/Refresh from one controlling goroutine.
type Table struct {
	cfg       Config
	snap      atomic.Pointer[map[netip.Addr]hop]
	misses    chan netip.Addr
	refreshed chan struct{}

	nl     *nlConn
	wanted map[netip.Addr]int // destination -> refreshes since last asked

	mu    sync.Mutex // guards stats only; never taken by Lookup
	stats Stats

	stop chan struct{}
	done chan struct{}
}

// New opens the table's netlink socket in the calling thread's network
// namespace and returns an empty table. Call Start to keep it fresh.
func New(cfg Config) (*Table, error) {
	if cfg.Interval == 0 {
		cfg.Interval = time.Second
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = 4096
	}
	if cfg.MissQueue == 0 {
		cfg.MissQueue = 256
	}
	if cfg.Idle == 0 {
		cfg.Idle = 60
	}
	if cfg.Interval < 0 || cfg.MaxEntries < 0 || cfg.MissQueue < 0 || cfg.Idle < 0 {
		return nil, fmt.Errorf("neigh: negative setting in %+v; use positive values or 0 for the default", cfg)
	}
	nl, err := openNetlink()
	if err != nil {
		return nil, err
	}
	t := &Table{
		cfg:       cfg,
		misses:    make(chan netip.Addr, cfg.MissQueue),
		refreshed: make(chan struct{}, 1),
		nl:        nl,
		wanted:    make(map[netip.Addr]int),
	}
	empty := map[netip.Addr]hop{}
	t.snap.Store(&empty)
	return t, nil
}

// Lookup returns the next-hop MAC for dst. It takes no lock and allocates
// nothing; on a miss it queues dst for the refresher without blocking (a
// full queue drops the request; the next miss repeats it).
func (t *Table) Lookup(dst netip.Addr) (mac [6]byte, ok bool) {
	h, ok := t.lookup(dst)
	return h.mac, ok
}

// Firm is Lookup for next hops the kernel holds firmly (reachable,
// permanent or no-ARP): a MAC learnt from frames, which anyone on the link
// can forge, must never override one of those.
func (t *Table) Firm(dst netip.Addr) (mac [6]byte, ok bool) {
	h, ok := t.lookup(dst)
	return h.mac, ok && h.firm
}

func (t *Table) lookup(dst netip.Addr) (hop, bool) {
	dst = dst.Unmap()
	h, ok := (*t.snap.Load())[dst]
	if !ok {
		select {
		case t.misses <- dst:
		default:
		}
	}
	return h, ok
}

// OutInterface returns the index of the interface the kernel routes dst
// through (RTM_GETROUTE on a netlink socket of its own, in the calling
// thread's namespace): what a reverse-path check compares the ingress
// interface with. Not for the hot path.
func OutInterface(dst netip.Addr) (int, error) {
	nl, err := openNetlink()
	if err != nil {
		return 0, err
	}
	defer nl.close()
	_, oif, err := nl.route(dst.Unmap())
	if err != nil {
		return 0, fmt.Errorf("neigh: route to %v: %w", dst, err)
	}
	return int(oif), nil
}

// Want asks the table to track dst without a lookup (a configured backend,
// for example), so that its MAC is known before the first packet.
func (t *Table) Want(dst netip.Addr) {
	select {
	case t.misses <- dst.Unmap():
	default:
	}
}

// Refreshed signals (without blocking the refresher) after each refresh
// round; tests and tools wait on it instead of sleeping.
func (t *Table) Refreshed() <-chan struct{} { return t.refreshed }

// Stats returns the refresher's counters.
func (t *Table) Stats() Stats {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.stats
	s.Entries = uint64(len(*t.snap.Load()))
	return s
}

// Start runs the refresher until Stop.
func (t *Table) Start() {
	if t.stop != nil {
		return
	}
	t.stop, t.done = make(chan struct{}), make(chan struct{})
	go t.run()
}

func (t *Table) run() {
	defer close(t.done)
	tick := time.NewTicker(t.cfg.Interval)
	defer tick.Stop()
	for {
		t.Refresh()
		select {
		case <-t.stop:
			return
		case <-tick.C:
		}
	}
}

// Stop ends the refresher and closes the netlink socket. Lookup keeps
// answering from the last snapshot.
func (t *Table) Stop() error {
	if t.stop != nil {
		close(t.stop)
		<-t.done
		t.stop = nil
	}
	if t.nl == nil {
		return nil
	}
	err := t.nl.close()
	t.nl = nil
	return err
}

// Refresh runs one round: take the queued misses, resolve every wanted
// destination's route and next hop, and publish a new snapshot. It is what
// the refresher goroutine runs each interval; call it directly only when the
// refresher is not started.
func (t *Table) Refresh() error {
	if t.nl == nil {
		return errors.New("neigh: table stopped")
	}
	var overflow uint64
	evictions := 0
	for drained := false; !drained; {
		select {
		case dst := <-t.misses:
			if _, ok := t.wanted[dst]; !ok && len(t.wanted) >= t.cfg.MaxEntries {
				// Full: make room by forgetting the destination asked for
				// least recently, a bounded number of times per round.
				if evictions >= maxEvictions || !t.evict() {
					overflow++
					continue
				}
				evictions++
			}
			t.wanted[dst] = 0
		default:
			drained = true
		}
	}
	err := t.resolve()
	t.mu.Lock()
	t.stats.Refreshes++
	t.stats.Overflow += overflow
	t.stats.Wanted = uint64(len(t.wanted))
	if err != nil {
		t.stats.Errors++
		t.stats.LastError = err.Error()
	}
	t.mu.Unlock()
	select {
	case t.refreshed <- struct{}{}:
	default:
	}
	return err
}

// maxEvictions bounds the O(MaxEntries) eviction scans of one round.
const maxEvictions = 64

func (t *Table) evict() bool {
	var victim netip.Addr
	worst := -1
	for dst, idle := range t.wanted {
		if idle > worst {
			victim, worst = dst, idle
		}
	}
	if worst < 0 {
		return false
	}
	delete(t.wanted, victim)
	return true
}

func (t *Table) resolve() error {
	if len(t.wanted) == 0 {
		return nil
	}
	neigh, err := t.nl.neighbours()
	if err != nil {
		return err
	}
	next := make(map[netip.Addr]hop, len(t.wanted))
	for dst, idle := range t.wanted {
		// idle counts rounds since the last miss. Hits are invisible (Lookup
		// writes nothing), so a resolved destination ages too but stays,
		// re-checked every round so that a changed route or MAC is
		// followed, until room is needed (evict). An unresolved one (no
		// route, ARP/ND pending or failed) is forgotten after Idle rounds
		// without a miss.
		t.wanted[dst] = idle + 1
		hop, oif, err := t.nl.route(dst)
		if err == nil {
			if h, ok := neigh[neighKey{oif, hop}]; ok {
				next[dst] = h
				continue
			}
		}
		if idle+1 >= t.cfg.Idle {
			delete(t.wanted, dst)
		}
	}
	t.snap.Store(&next)
	return nil
}
