package registrar

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/node"
	"sipedge/pipeline/stages/registrar/bindings"
)

// Def declares the stage.
var Def = pipeline.StageDef{
	Name:    "registrar",
	Doc:     "REGISTER for the cluster's domains: check, park while the bindings are stored, answer 200 with every binding",
	Section: "[registrar]",
	Parks:   true,
	Counters: []pipeline.CounterDef{
		{Name: "sipedge_registrar_requests_total", Help: "REGISTERs for our domains."},
		{Name: "sipedge_registrar_ok_total", Help: "REGISTERs answered 200 (stored, or a fetch)."},
		{Name: "sipedge_registrar_bad_requests_total", Help: "REGISTERs refused with 400 (malformed Contact, Expires, To)."},
		{Name: "sipedge_registrar_not_found_total", Help: "REGISTERs refused with 404 (To not of our domains)."},
		{Name: "sipedge_registrar_too_brief_total", Help: "REGISTERs refused with 423 Interval Too Brief."},
		{Name: "sipedge_registrar_out_of_order_total", Help: "REGISTERs refused with 500: same Call-ID, CSeq not higher (RFC 3261 10.3)."},
		{Name: "sipedge_registrar_too_many_total", Help: "REGISTERs refused with 403: too many contacts for the AOR."},
		{Name: "sipedge_registrar_store_errors_total", Help: "REGISTERs answered 503: the binding store failed."},
		{Name: "sipedge_registrar_too_large_total", Help: "REGISTERs refused with 513: larger than a helper request."},
		{Name: "sipedge_registrar_parked_total", Help: "REGISTERs parked while the store works."},
		{Name: "sipedge_registrar_lost_answers_total", Help: "Store answers overwritten before the worker read them (answered 500)."},
		{Name: "sipedge_registrar_forbidden_total", Help: "REGISTERs refused with 403: credentials for another user than To's."},
	},
}

const (
	cRequests = iota
	cOK
	cBad
	cNotFound
	cTooBrief
	cOutOfOrder
	cTooMany
	cStoreErrors
	cTooLarge
	cParked
	cLost
	cForbidden
	numCounters
)

// Config configures the registrar ([registrar]).
type Config struct {
	// Domains are the SIP domains the cluster is the registrar of;
	// REGISTERs for others go on to the next stage (route forwards them).
	Domains *bindings.Domains
	// DefaultExpires is granted when the UA asks for nothing; MinExpires
	// and MaxExpires bound what it asks (423 below, clamped above).
	DefaultExpires, MinExpires, MaxExpires time.Duration
	// MaxContacts bounds the bindings of one AOR (0: no bound);
	// EvictOldest makes room by removing the oldest instead of refusing.
	MaxContacts int
	EvictOldest bool
	// Store keeps the bindings.
	Store bindings.Store
	// Realm is [auth]'s realm when REGISTERs authenticate: the
	// credentials for it must be To's user's (403 otherwise). "" checks
	// nothing.
	Realm string
	// Node, when set, says which Request-URIs name this node: a REGISTER
	// to the node itself (sip:192.0.2.1) is ours too, its To then naming
	// one of the domains.
	Node *node.Node
	// Self is this node's address: where other nodes send requests for
	// the NATed contacts it registered (Binding.Node).
	Self netip.AddrPort
	// Workers is the number of workers (one helper each).
	Workers int
	// Deadline bounds a parked REGISTER's wait for the store (default
	// 500ms); RetryAfter is the seconds of the 503 fallback.
	Deadline   time.Duration
	RetryAfter int
	// QueueLen bounds the REGISTERs waiting for one worker's helper
	// (256); Concurrency is how many store calls each helper runs at once (4).
	QueueLen, Concurrency int
	// StoreTimeout bounds one store call (Deadline).
	StoreTimeout time.Duration
	// Keep is how long an AOR's index outlives its longest binding.
	Keep time.Duration
	// Clock is the wall clock (time.Now).
	Clock func() time.Time
}

// Registrar is the stage's shared form: one per node.
type Registrar struct {
	cfg        Config
	minExpires []byte // "Min-Expires: N\r\n"
	retry      []byte
	box        *bindings.Mailbox[[]byte]
	stats      Stats
	flows      Flows
	made       []bool
	done       chan struct{}
	closeOnce  sync.Once
	wg         sync.WaitGroup
}

// Stats are the helpers' counts, read by the module's metrics.
type Stats struct {
	Written, Refreshed, Removed, Evicted, Expired, Fetches, Errors, QueueFull, RingFull atomic.Uint64
	Latency                                                                             pipeline.Latency
}

// New checks cfg and returns the registrar.
func New(cfg Config) (*Registrar, error) {
	if cfg.Domains == nil || len(cfg.Domains.Names()) == 0 {
		return nil, errors.New("registrar: no domain: list the SIP domains to register in [registrar] domains")
	}
	if cfg.Store == nil {
		return nil, errors.New("registrar: Store is required")
	}
	if cfg.Workers <= 0 {
		return nil, errors.New("registrar: Workers must be positive")
	}
	if cfg.MinExpires <= 0 || cfg.MaxExpires < cfg.MinExpires || cfg.DefaultExpires < cfg.MinExpires || cfg.DefaultExpires > cfg.MaxExpires {
		return nil, fmt.Errorf("registrar: expires: want 0 < min (%v) <= default (%v) <= max (%v)", cfg.MinExpires, cfg.DefaultExpires, cfg.MaxExpires)
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = 500 * time.Millisecond
	}
	if cfg.StoreTimeout <= 0 {
		cfg.StoreTimeout = cfg.Deadline
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 256
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 8 * cfg.MaxExpires
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	r := &Registrar{
		cfg:        cfg,
		minExpires: []byte("Min-Expires: " + strconv.Itoa(int(cfg.MinExpires/time.Second)) + "\r\n"),
		retry:      pipeline.RetryAfter(cfg.RetryAfter),
		box:        bindings.NewMailbox[[]byte](4096 * cfg.Workers),
		made:       make([]bool, cfg.Workers),
		done:       make(chan struct{}),
	}
	return r, nil
}

// Def implements pipeline.StageMaker.
func (r *Registrar) Def() *pipeline.StageDef { return &Def }

// NewStage implements pipeline.StageMaker: worker env.Worker's stage and
// the helper it parks on.
func (r *Registrar) NewStage(env *pipeline.Env) (pipeline.Stage, error) {
	w := env.Worker
	if w < 0 || w >= len(r.made) {
		return nil, fmt.Errorf("registrar: worker %d: Config.Workers is %d", w, len(r.made))
	}
	if r.made[w] {
		return nil, fmt.Errorf("registrar: the stage of worker %d was already made", w)
	}
	if env.Counters.Len() != numCounters {
		return nil, fmt.Errorf("registrar: %d counters given, Def declares %d", env.Counters.Len(), numCounters)
	}
	h := r.startHelper()
	ref, err := env.Helper(h, pipeline.Fallback{RetryAfter: r.cfg.RetryAfter})
	if err != nil {
		return nil, err
	}
	r.made[w] = true
	return &stage{r: r, cnt: env.Counters, helper: ref}, nil
}

// Stats returns the helpers' counts.
func (r *Registrar) Stats() *Stats { return &r.stats }

// Close stops the helpers. Stop the workers first.
func (r *Registrar) Close() {
	r.closeOnce.Do(func() { close(r.done) })
	r.wg.Wait()
}
