package auth

import (
	"crypto/rand"
	"errors"
	"fmt"
	"hash/maphash"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"sipedge/pipeline"
	"sipedge/sipcore"
)

// Config configures digest authentication ([auth] in config.toml). Zero
// values take the documented defaults.
type Config struct {
	// Realm is the realm challenged with and accepted (required).
	Realm string
	// Methods are the requests that must authenticate (INVITE, REGISTER,
	// MESSAGE, SUBSCRIBE by default). ACK and CANCEL cannot be challenged
	// and are refused here.
	Methods []sipcore.Method
	// Trusted sources skip authentication (backends, trunks, peers).
	Trusted []netip.Prefix
	// Algorithms are offered in challenges, most preferred first
	// (SHA-256 then MD5 by default, as RFC 8760 orders them), and they
	// alone are accepted in credentials: an answer with another one is
	// challenged again, so that a downgrade to MD5 cannot be forced.
	Algorithms []sipcore.Algorithm
	// AllowNoQop accepts the RFC 2069 form of credentials (no qop, so no
	// nonce-count): such an answer can be replayed within its call until
	// the nonce expires. Off by default: qop=auth is required.
	AllowNoQop bool
	// FromMustMatch refuses (403) an authenticated request whose From
	// user is not the authenticated user name, so that one subscriber's
	// credentials cannot place calls as another. The daemon turns it on
	// by default ([auth] from_must_match).
	FromMustMatch bool
	// NonceCounts bounds the nonces whose nonce-count each worker
	// remembers (65536); under more, older nonces are challenged again.
	NonceCounts int
	// MaxParkedPerSource bounds the store lookups one source (an IPv4
	// address, an IPv6 prefix of IPv6Prefix bits) starts per worker per
	// Deadline (16): beyond it a request gets the store-error fallback
	// instead of a lookup.
	MaxParkedPerSource int
	// IPv6Prefix is the prefix length of an IPv6 source (0: /64).
	IPv6Prefix int
	// NonceKey issues and checks the stateless nonces (required:
	// sipcore.NewNonceKey of the cluster secret).
	NonceKey *sipcore.NonceKey
	// NonceMaxAge is how long a nonce is accepted; older ones get a
	// challenge with stale=true (5m).
	NonceMaxAge time.Duration
	// IgnoreURI skips the check that the credentials' uri is the
	// Request-URI (RFC 7616 3.4.6); only for clients behind something that
	// rewrites the Request-URI.
	IgnoreURI bool
	// Store holds the credentials (required).
	Store Store
	// Workers is how many pipeline workers will run the stage (1).
	Workers int
	// CacheSize bounds the cached users per worker (16384).
	CacheSize int
	// CacheTTL is how long a found user is trusted without the store
	// telling of a change; 0 keeps it until invalidated or evicted (10m).
	CacheTTL time.Duration
	// NegativeTTL is how long a user the store does not have is remembered
	// as absent (30s).
	NegativeTTL time.Duration
	// Deadline is how long a message waits for the store (50ms); then the
	// worker's park fallback answers (503 with Retry-After, or drop).
	Deadline time.Duration
	// LookupTimeout bounds one store lookup (1s). A lookup that ends after
	// Deadline still counts as a late answer.
	LookupTimeout time.Duration
	// Concurrency is how many lookups each worker's helper runs at once,
	// so that one hanging lookup does not hold back the others (16).
	Concurrency int
	// QueueLen bounds the lookups waiting per worker (256); beyond it a
	// parked message gets the fallback at its deadline.
	QueueLen int
	// DropOnStoreError drops a message whose lookup failed instead of
	// answering 503 with Retry-After.
	DropOnStoreError bool
	// RetryAfter is the Retry-After (seconds) of the 503 sent when the
	// store failed (5).
	RetryAfter int
	// Failures, when set, is told of every failed authentication.
	Failures FailureSink
	// WorkerFailures, when set, replaces Failures per worker: worker i
	// reports to WorkerFailures[i], from its own goroutine. It is how each
	// worker's guard stage, which is not safe for other goroutines, hears
	// of the failures that worker saw. Its length must be Workers.
	WorkerFailures []FailureSink
	// Clock is the wall clock nonces are stamped with (time.Now); tests
	// inject theirs.
	Clock func() time.Time
}

// Auth is the compiled configuration shared by every worker's stages, the
// per-worker caches and helpers, and the counters. Create it with New.
type Auth struct {
	cfg     Config
	realm   []byte
	methods uint32 // bit per sipcore.Method
	algs    []sipcore.Algorithm
	peek    Peeker
	hash    hasher
	txSeed  maphash.Seed
	dummy   Entry // verified against for unknown users: same work as a known one
	retry   []byte
	cores   []*core

	invMu         sync.Mutex // serialises invalidation producers
	seq           atomic.Uint64
	invalidations atomic.Uint64
	flushes       atomic.Uint64

	closeOnce sync.Once
	done      chan struct{}
	wg        sync.WaitGroup
}

// DefaultMethods are the methods authenticated when Config.Methods is empty.
var DefaultMethods = []sipcore.Method{sipcore.MethodINVITE, sipcore.MethodREGISTER, sipcore.MethodMESSAGE, sipcore.MethodSUBSCRIBE}

// New checks cfg, fills in the defaults and registers with the store when
// it pushes changes.
func New(cfg Config) (*Auth, error) {
	if cfg.Realm == "" || len(cfg.Realm) > sipcore.MaxDigestField {
		return nil, fmt.Errorf("auth: realm %q: set a realm of 1 to %d bytes ([auth] realm), usually the SIP domain", cfg.Realm, sipcore.MaxDigestField)
	}
	if cfg.NonceKey == nil {
		return nil, errors.New("auth: NonceKey is required (sipcore.NewNonceKey of [node] secret)")
	}
	if cfg.Store == nil {
		return nil, errors.New("auth: Store is required ([auth] store = \"file\" or \"redis\")")
	}
	if len(cfg.Methods) == 0 {
		cfg.Methods = DefaultMethods
	}
	if len(cfg.Algorithms) == 0 {
		cfg.Algorithms = []sipcore.Algorithm{sipcore.AlgSHA256, sipcore.AlgMD5}
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&cfg.NonceMaxAge, 5*time.Minute)
	def(&cfg.NegativeTTL, 30*time.Second)
	def(&cfg.Deadline, 50*time.Millisecond)
	def(&cfg.LookupTimeout, time.Second)
	if cfg.CacheTTL < 0 {
		cfg.CacheTTL = 0
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 1
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 16384
	}
	if cfg.CacheSize > 1<<24 {
		return nil, fmt.Errorf("auth: cache size %d per worker is too large: use at most %d", cfg.CacheSize, 1<<24)
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 16
	}
	if cfg.QueueLen <= 0 {
		cfg.QueueLen = 256
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.MaxParkedPerSource <= 0 {
		cfg.MaxParkedPerSource = 16
	}
	if cfg.MaxParkedPerSource > 1<<15 {
		return nil, fmt.Errorf("auth: %d parked lookups per source: use at most %d", cfg.MaxParkedPerSource, 1<<15)
	}
	if cfg.NonceCounts <= 0 {
		cfg.NonceCounts = 65536
	}
	if cfg.NonceCounts > 1<<24 {
		return nil, fmt.Errorf("auth: %d nonce counts per worker is too many: use at most %d", cfg.NonceCounts, 1<<24)
	}
	a := &Auth{
		cfg:    cfg,
		realm:  []byte(cfg.Realm),
		hash:   newHasher(),
		retry:  pipeline.RetryAfter(cfg.RetryAfter),
		done:   make(chan struct{}),
		txSeed: maphash.MakeSeed(),
	}
	// A random password nobody knows: verifying against it costs what a
	// real user costs and never succeeds.
	var pw [16]byte
	rand.Read(pw[:])
	for _, alg := range []sipcore.Algorithm{sipcore.AlgMD5, sipcore.AlgSHA256} {
		if err := a.dummy.SetHA1(alg, []byte(sipcore.HA1(alg, "", cfg.Realm, string(pw[:])))); err != nil {
			return nil, err
		}
	}
	for _, m := range cfg.Methods {
		switch m {
		case sipcore.MethodACK, sipcore.MethodCANCEL:
			return nil, fmt.Errorf("auth: method %d (ACK or CANCEL) cannot be challenged (RFC 3261 22.1): remove it from [auth] methods", m)
		case sipcore.MethodUnknown:
			return nil, errors.New("auth: an unknown method cannot be listed in [auth] methods")
		}
		a.methods |= 1 << m
	}
	for _, alg := range cfg.Algorithms {
		switch alg {
		case sipcore.AlgMD5, sipcore.AlgSHA256, sipcore.AlgMD5Sess, sipcore.AlgSHA256Sess:
			a.algs = append(a.algs, alg)
		default:
			return nil, fmt.Errorf("auth: algorithm %s cannot be offered: stores keep MD5 and SHA-256 HA1 values (MD5, SHA-256 and their -sess variants work with them)", alg)
		}
	}
	if p, ok := cfg.Store.(Peeker); ok {
		a.peek = p
	}
	if cfg.WorkerFailures != nil && len(cfg.WorkerFailures) != cfg.Workers {
		return nil, fmt.Errorf("auth: %d WorkerFailures for %d workers: give one per worker (or use Failures)", len(cfg.WorkerFailures), cfg.Workers)
	}
	a.cores = make([]*core, cfg.Workers)
	for i := range a.cores {
		a.cores[i] = newCore(a, i)
		a.cores[i].failures = cfg.Failures
		if cfg.WorkerFailures != nil {
			a.cores[i].failures = cfg.WorkerFailures[i]
		}
	}
	if n, ok := cfg.Store.(Notifier); ok {
		n.Notify(a)
	}
	return a, nil
}

// Realm returns the configured realm.
func (a *Auth) Realm() string { return a.cfg.Realm }

// Def implements pipeline.StageMaker.
func (a *Auth) Def() *pipeline.StageDef { return &Def }

// NewStage implements pipeline.StageMaker: the auth stage of worker
// env.Worker (0 to Workers-1), parking on that worker's helper, which
// looks users up in the store. Its fallback (a late or refused lookup) is
// the auth's: 503 with Retry-After, or a drop (DropOnStoreError).
func (a *Auth) NewStage(env *pipeline.Env) (pipeline.Stage, error) {
	w := env.Worker
	if w < 0 || w >= len(a.cores) {
		return nil, fmt.Errorf("auth: worker %d: Config.Workers is %d", w, len(a.cores))
	}
	c := a.cores[w]
	if c.staged {
		return nil, fmt.Errorf("auth: the stage of worker %d was already made: a worker's stage is its own", w)
	}
	if env.Counters.Len() != numCounters {
		return nil, fmt.Errorf("auth: %d counters given, Def declares %d", env.Counters.Len(), numCounters)
	}
	ref, err := env.Helper(c.startHelper(), pipeline.Fallback{Drop: a.cfg.DropOnStoreError, RetryAfter: a.cfg.RetryAfter})
	if err != nil {
		return nil, err
	}
	c.staged = true
	c.cnt = env.Counters
	return &stage{checker: checker{core: c}, helper: ref}, nil
}

// Invalidate implements Invalidator: every worker forgets user at its next
// batch.
func (a *Auth) Invalidate(realm, user []byte) {
	if string(realm) != a.cfg.Realm {
		return
	}
	k := a.hash.key(user)
	a.invMu.Lock()
	seq := a.seq.Add(1)
	for _, c := range a.cores {
		if !c.inv.Push(&invEntry{k, seq}) {
			c.flushSeq.Store(seq) // overflow: forget everything instead
		}
	}
	a.invMu.Unlock()
	a.invalidations.Add(1)
}

// InvalidateAll implements Invalidator: every worker empties its cache at
// its next batch.
func (a *Auth) InvalidateAll() {
	a.invMu.Lock()
	seq := a.seq.Add(1)
	for _, c := range a.cores {
		c.flushSeq.Store(seq)
	}
	a.invMu.Unlock()
	a.flushes.Add(1)
}

// Close stops the helpers. Stop the workers first.
func (a *Auth) Close() {
	a.closeOnce.Do(func() { close(a.done) })
	a.wg.Wait()
}

func (a *Auth) needs(m sipcore.Method) bool { return a.methods&(1<<m) != 0 }

// accepts reports whether credentials use what this node offers: one of
// the configured algorithms, and qop=auth unless AllowNoQop.
func (a *Auth) accepts(cr *sipcore.Credentials) bool {
	if cr.Qop != sipcore.QopAuth && !a.cfg.AllowNoQop {
		return false
	}
	for _, alg := range a.algs {
		if alg == cr.Algorithm {
			return true
		}
	}
	return false
}

func (a *Auth) trusted(ip netip.Addr) bool {
	ip = ip.Unmap()
	for _, p := range a.cfg.Trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// invEntry is one invalidation on its way to a worker. Each worker's ring
// has several producers (Redis pushes, file reloads) serialised by
// Auth.invMu, so that it is single-producer as spsc.Ring requires.
type invEntry struct {
	k   userKey
	seq uint64
}
