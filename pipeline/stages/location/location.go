package location

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/internal/spsc"
	"sipedge/pipeline/node"
	"sipedge/pipeline/stages/registrar/bindings"
	"sipedge/sipcore"
)

// Def declares the stage.
var Def = pipeline.StageDef{
	Name:    "location",
	Doc:     "requests for our domains: to the registered contact (cache, else park on a store lookup); 404/480 without one; NAT flows through the node that holds them",
	Section: "[registrar]",
	Parks:   true,
	Counters: []pipeline.CounterDef{
		{Name: "sipedge_location_requests_total", Help: "Requests for an AOR of our domains."},
		{Name: "sipedge_location_forwarded_total", Help: "Requests sent to a registered contact."},
		{Name: "sipedge_location_via_node_total", Help: "Requests sent to a NATed contact through the node holding its flow."},
		{Name: "sipedge_location_flow_total", Help: "Requests delivered on a flow this node holds (flow token)."},
		{Name: "sipedge_location_not_found_total", Help: "Requests answered 404: no such user."},
		{Name: "sipedge_location_unavailable_total", Help: "Requests answered 480: the user has no binding."},
		{Name: "sipedge_location_cache_hits_total", Help: "Cache lookups that found the AOR."},
		{Name: "sipedge_location_cache_misses_total", Help: "Cache lookups that missed (request parked)."},
		{Name: "sipedge_location_store_errors_total", Help: "Parked requests given the store-error fallback (503)."},
		{Name: "sipedge_location_fill_skipped_total", Help: "Lookups not cached because an invalidation raced them."},
		{Name: "sipedge_location_expired_total", Help: "Cached bindings found expired."},
		{Name: "sipedge_location_cache_entries", Help: "Cached AORs, all workers.", Gauge: true},
	},
}

const (
	cRequests = iota
	cForwarded
	cViaNode
	cFlow
	cNotFound
	cUnavailable
	cHits
	cMisses
	cStoreErrors
	cFillSkipped
	cExpired
	cEntries
	numCounters
)

// Config configures the location stage ([registrar] with role "location").
type Config struct {
	Domains *bindings.Domains
	Store   bindings.Store
	// Node says which Route URIs name this node; Self is its address as
	// bindings name it (Binding.Node).
	Node *node.Node
	Self netip.AddrPort
	// SentBy and RecordRoute are the route stage's (our Via, our
	// Record-Route for initial requests; empty for none).
	SentBy, RecordRoute string
	// Exists, when set, tells a user that exists without a binding (480)
	// from one that does not (404). It runs on the helper.
	Exists func(ctx context.Context, aor string) (bool, error)
	// Workers, CacheSize (AORs per worker, 65536), CacheTTL (how long a
	// cached binding is trusted without a push, 5m) and NegativeTTL (how
	// long "no binding" is, 5s).
	Workers, CacheSize    int
	CacheTTL, NegativeTTL time.Duration
	// Deadline bounds a parked request's wait (500ms); RetryAfter is the
	// seconds of the 503 fallback; QueueLen bounds each helper's queue.
	Deadline   time.Duration
	RetryAfter int
	QueueLen   int
}

// Target is where requests for one AOR go: made by a helper, immutable,
// shared by the worker caches.
type Target struct {
	// Status is 0 when there is a contact, else 404 or 480.
	Status int
	// RURI is the contact URI the request is sent to.
	RURI []byte
	// Dst is the next hop: the contact, its NAT address, the node that
	// holds its flow, or the first Path hop.
	Dst netip.AddrPort
	// Route are header lines to add ("Route: <...>\r\n"), nil for none.
	Route []byte
	// ViaNode says Dst is another edge that holds the flow.
	ViaNode bool
	// TTL bounds how long it may be cached.
	TTL time.Duration
}

// Location is the stage's shared form.
type Location struct {
	cfg         Config
	hash        hasher
	fwdInitial  sipcore.ForwardOptions
	fwdInDialog sipcore.ForwardOptions
	// rr: initial requests are record-routed, with a flow token naming
	// where the request went, so that the caller's in-dialog requests
	// (Request-URI: the contact) come back through the edge and follow.
	rr        bool
	retry     []byte
	box       *bindings.Mailbox[*Target]
	cores     []*core
	invMu     sync.Mutex
	seq       atomic.Uint64
	done      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup

	// Lookups, Errors and Invalidations are the helpers' counts.
	Lookups, Errors, Invalidations atomic.Uint64
}

type core struct {
	cache   *cache
	inv     *spsc.Ring[invEntry]
	flush   atomic.Uint64
	applied uint64
	flushed uint64
	made    bool
}

type invEntry struct {
	k   aorKey
	seq uint64
}

// New checks cfg and returns the stage's shared form; it registers for the
// store's invalidations.
func New(cfg Config) (*Location, error) {
	if cfg.Domains == nil || len(cfg.Domains.Names()) == 0 {
		return nil, errors.New("location: no domain: list the SIP domains in [registrar] domains")
	}
	if cfg.Store == nil || cfg.Node == nil {
		return nil, errors.New("location: Store and Node are required")
	}
	if cfg.Workers <= 0 {
		return nil, errors.New("location: Workers must be positive")
	}
	if _, err := netip.ParseAddrPort(cfg.SentBy); err != nil {
		return nil, fmt.Errorf("location: SentBy %q: want IP:port", cfg.SentBy)
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 65536
	}
	if cfg.CacheTTL <= 0 {
		cfg.CacheTTL = 5 * time.Minute
	}
	if cfg.NegativeTTL <= 0 {
		cfg.NegativeTTL = 5 * time.Second
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = 500 * time.Millisecond
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 256
	}
	l := &Location{cfg: cfg, hash: newHasher(), retry: pipeline.RetryAfter(cfg.RetryAfter),
		box: bindings.NewMailbox[*Target](4096 * cfg.Workers), done: make(chan struct{})}
	l.fwdInDialog = sipcore.ForwardOptions{Key: cfg.Node.Key, SentBy: []byte(cfg.SentBy), IsLocal: cfg.Node.IsLocal, MarkLateOffer: cfg.Node.MarkLateOffer}
	l.fwdInitial = l.fwdInDialog
	if cfg.RecordRoute != "" {
		l.rr = true
		l.fwdInitial.RecordRoute = []byte(cfg.RecordRoute)
	}
	for i := 0; i < cfg.Workers; i++ {
		l.cores = append(l.cores, &core{cache: newCache(cfg.CacheSize), inv: spsc.New[invEntry](1024)})
	}
	cfg.Store.Notify(l.invalidate)
	return l, nil
}

// Def implements pipeline.StageMaker.
func (l *Location) Def() *pipeline.StageDef { return &Def }

// NewStage implements pipeline.StageMaker.
func (l *Location) NewStage(env *pipeline.Env) (pipeline.Stage, error) {
	w := env.Worker
	if w < 0 || w >= len(l.cores) {
		return nil, fmt.Errorf("location: worker %d: Config.Workers is %d", w, len(l.cores))
	}
	c := l.cores[w]
	if c.made {
		return nil, fmt.Errorf("location: the stage of worker %d was already made", w)
	}
	if env.Counters.Len() != numCounters {
		return nil, fmt.Errorf("location: %d counters given, Def declares %d", env.Counters.Len(), numCounters)
	}
	h := pipeline.NewFuncHelper(l.cfg.QueueLen, l.lookup)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		ctx, cancel := context.WithCancel(context.Background())
		go func() { <-l.done; cancel() }()
		h.Run(ctx)
	}()
	ref, err := env.Helper(h, pipeline.Fallback{RetryAfter: l.cfg.RetryAfter})
	if err != nil {
		return nil, err
	}
	c.made = true
	return &stage{l: l, c: c, cnt: env.Counters, helper: ref}, nil
}

// Close stops the helpers. Stop the workers first.
func (l *Location) Close() {
	l.closeOnce.Do(func() { close(l.done) })
	l.wg.Wait()
}

// invalidate is the store's push: every worker forgets aor ("" everything)
// at its next batch.
func (l *Location) invalidate(aor string) {
	l.Invalidations.Add(1)
	l.invMu.Lock()
	defer l.invMu.Unlock()
	seq := l.seq.Add(1)
	if aor == "" {
		for _, c := range l.cores {
			c.flush.Store(seq)
		}
		return
	}
	k := l.hash.key([]byte(aor))
	for _, c := range l.cores {
		if !c.inv.Push(&invEntry{k, seq}) {
			c.flush.Store(seq) // overflow: forget everything instead
		}
	}
}
