package guard

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"sipedge/pipeline"
)

// Action is what happens to a request over its source's limit, or to a new
// request while the worker is overloaded.
type Action uint8

const (
	// Reject answers 503 Service Unavailable with Retry-After: a well
	// behaved client backs off instead of retransmitting.
	Reject Action = iota
	// Silent drops without an answer: cheapest, and gives a flood nothing
	// to reflect.
	Silent
)

// Banner puts a source into a ban enforced below userspace for ttl.
// afxdp.Program implements it (the XDP banned map).
type Banner interface {
	Ban(addr netip.Addr, ttl time.Duration) error
}

// Unbanner is the optional half of a Banner that lifts a ban early
// (operator unban, an address added to the allow-list).
type Unbanner interface {
	Unban(addr netip.Addr) error
}

// Limit is one token bucket: Rate messages a second sustained, Burst at once.
type Limit struct {
	Rate  float64
	Burst int
}

// Config configures a Guard. Zero values take the documented defaults.
type Config struct {
	// MaxMessageSize drops larger datagrams unread (8192).
	MaxMessageSize int
	// IPv6Prefix is the prefix length an IPv6 source is counted under
	// (pipeline.DefaultIPv6SourcePrefix, /64): see sourceKey.
	IPv6Prefix int
	// MaxHeaders and MaxVias drop messages with more header lines or Via
	// values (100, 40). Both are counted on the raw bytes before parsing.
	MaxHeaders, MaxVias int
	// All, Invite and Register are the per-source limits: every message,
	// INVITE requests, REGISTER requests (200/400, 20/50, 10/50).
	All, Invite, Register Limit
	// OverLimit is what a request over a limit gets (Reject).
	OverLimit Action
	// RetryAfter is the Retry-After of the guard's 503s (5s, whole seconds).
	RetryAfter time.Duration
	// BanAfter bans a source that has stayed over a limit this long (10s);
	// a negative value bans on the first excess ([guard] ban_after = "0s").
	BanAfter time.Duration
	// BanTTL is how long every automatic ban lasts (10m).
	BanTTL time.Duration
	// UserAgents and FromTo are scanner signatures: case-insensitive
	// substrings of the User-Agent header, and of the From or To header.
	// nil takes DefaultUserAgents / DefaultFromTo; an empty non-nil slice
	// matches nothing.
	UserAgents, FromTo []string
	// AuthFailures failed authentications within AuthWindow ban the
	// source (10 in 1m).
	AuthFailures int
	AuthWindow   time.Duration
	// Allow lists the sources (trunks, backends, monitoring) that are never
	// rate limited, shed, matched against signatures or banned.
	Allow []netip.Prefix
	// Backends are the dispatcher's backends, address and port: limited
	// by Backend alone (all their messages), never matched against
	// signatures, shed or banned. SetTrusted replaces them.
	Backends []netip.AddrPort
	// Backend is the backends' own limit (5000/s, burst 10000).
	Backend Limit
	// NeverBan are sources that are limited like any other but never
	// banned (the auth stage's trusted networks); the backends' IP
	// addresses are never banned either. SetTrusted replaces them.
	NeverBan []netip.Prefix
	// ScannerMatches is how many User-Agent signature matches ban a
	// source (5): one forged datagram must not get a victim banned.
	// From/To signatures (the display name, chosen by whoever sends)
	// only drop.
	ScannerMatches int
	// MaxRegistry bounds the ban registry (the bans listed and written to
	// the Banner) (65536); bans beyond it are refused and counted.
	MaxRegistry int
	// TableSize is the number of sources each worker tracks (65536, rounded
	// up to a power of two); MaxBans the bans each worker enforces (4096).
	TableSize, MaxBans int
	// IdleAfter frees a source's entry for reuse when it has been silent
	// this long (1m).
	IdleAfter time.Duration
	// Batch is the workers' receive batch size (pipeline.Config.Batch, 64).
	// A worker is overloaded after OverloadBatches (8) receive batches in
	// a row at least OverloadFill percent (100) full.
	Batch, OverloadBatches, OverloadFill int
	// RingSize bounds the ban requests each worker can have in flight to
	// the ban goroutine, and the operator commands to each worker (1024).
	RingSize int
	// Banner, when set, also receives every ban (the XDP banned map).
	Banner Banner
	// Now is the clock, monotonic ns; it must be the workers' clock
	// (pipeline.Config.Now). Defaults to pipeline.Nanotime.
	Now func() int64
}

// DefaultUserAgents are the User-Agent signatures of common SIP scanners.
var DefaultUserAgents = []string{
	"friendly-scanner", "sipvicious", "sipcli", "sipsak", "vaxsipuseragent",
	"sip-scan", "iwar", "sundayddr", "pplsip",
}

// DefaultFromTo are From/To signatures of scanner sweeps (svmap, svwar).
var DefaultFromTo = []string{"sipvicious", "friendly-scanner"}

func (c *Config) setDefaults() {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	defd := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defl := func(l *Limit, rate float64, burst int) {
		if l.Rate == 0 {
			l.Rate = rate
		}
		if l.Burst == 0 {
			l.Burst = burst
		}
	}
	def(&c.MaxMessageSize, 8192)
	def(&c.MaxHeaders, 100)
	def(&c.MaxVias, 40)
	defl(&c.All, 200, 400)
	defl(&c.Invite, 20, 50)
	defl(&c.Register, 10, 50)
	defl(&c.Backend, 100000, 100000)
	def(&c.ScannerMatches, 5)
	def(&c.MaxRegistry, 65536)
	defd(&c.RetryAfter, 5*time.Second)
	defd(&c.BanAfter, 10*time.Second)
	defd(&c.BanTTL, 10*time.Minute)
	if c.UserAgents == nil {
		c.UserAgents = DefaultUserAgents
	}
	if c.FromTo == nil {
		c.FromTo = DefaultFromTo
	}
	def(&c.AuthFailures, 10)
	defd(&c.AuthWindow, time.Minute)
	def(&c.TableSize, 65536)
	def(&c.MaxBans, 4096)
	defd(&c.IdleAfter, time.Minute)
	def(&c.Batch, 64)
	def(&c.OverloadBatches, 8)
	def(&c.OverloadFill, 100)
	def(&c.RingSize, 1024)
	if c.Now == nil {
		c.Now = pipeline.Nanotime
	}
}

func (c *Config) check() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf("guard: "+format, args...)) }
	if c.MaxMessageSize < 64 || c.MaxMessageSize > 65535 {
		bad("MaxMessageSize %d: want 64 to 65535 bytes", c.MaxMessageSize)
	}
	if c.IPv6Prefix < 0 || c.IPv6Prefix > 128 {
		bad("IPv6Prefix %d: want 1 to 128 (0: /64)", c.IPv6Prefix)
	}
	if c.MaxHeaders < 1 || c.MaxVias < 1 {
		bad("MaxHeaders %d and MaxVias %d must be at least 1", c.MaxHeaders, c.MaxVias)
	}
	for _, l := range []struct {
		name string
		l    Limit
	}{{"All", c.All}, {"Invite", c.Invite}, {"Register", c.Register}, {"Backend", c.Backend}} {
		if !(l.l.Rate > 0 && l.l.Rate <= 1e9) || l.l.Burst < 1 || l.l.Burst > 1<<20 {
			bad("%s limit rate %v burst %d: want a rate above 0 (per second) and a burst from 1 to %d", l.name, l.l.Rate, l.l.Burst, 1<<20)
		}
	}
	if c.OverLimit > Silent {
		bad("OverLimit %d is neither Reject nor Silent", c.OverLimit)
	}
	if c.RetryAfter < time.Second || c.RetryAfter%time.Second != 0 || c.RetryAfter > time.Hour {
		bad("RetryAfter %v: want whole seconds from 1s to 1h (Retry-After is in seconds)", c.RetryAfter)
	}
	if c.BanTTL <= 0 || c.AuthWindow <= 0 || c.IdleAfter <= 0 {
		bad("BanTTL %v, AuthWindow %v and IdleAfter %v must be positive", c.BanTTL, c.AuthWindow, c.IdleAfter)
	}
	for _, p := range append(append([]string(nil), c.UserAgents...), c.FromTo...) {
		if strings.TrimSpace(p) == "" || len(p) > 128 {
			bad("signature %q: want 1 to 128 characters, not blank", p)
		}
	}
	if c.ScannerMatches < 1 || c.ScannerMatches > 1000 {
		bad("ScannerMatches %d: want 1 to 1000 User-Agent matches before a ban", c.ScannerMatches)
	}
	if c.MaxRegistry < 16 || c.MaxRegistry > 1<<24 {
		bad("MaxRegistry %d: want 16 to %d bans", c.MaxRegistry, 1<<24)
	}
	if c.AuthFailures < 1 {
		bad("AuthFailures %d: want at least 1", c.AuthFailures)
	}
	for _, p := range c.Allow {
		if !p.IsValid() {
			bad("allow-list entry %v is not a valid prefix", p)
		}
	}
	if c.TableSize < 16 || c.TableSize > 1<<24 || c.MaxBans < 16 || c.MaxBans > 1<<20 {
		bad("TableSize %d (16 to 16M) or MaxBans %d (16 to 1M) out of range", c.TableSize, c.MaxBans)
	}
	if c.Batch < 1 || c.OverloadBatches < 1 || c.OverloadFill < 1 || c.OverloadFill > 100 {
		bad("Batch %d, OverloadBatches %d must be at least 1 and OverloadFill %d a percentage from 1 to 100", c.Batch, c.OverloadBatches, c.OverloadFill)
	}
	if c.RingSize < 2 || c.RingSize > 1<<20 {
		bad("RingSize %d: want 2 to %d", c.RingSize, 1<<20)
	}
	return errors.Join(errs...)
}

// Guard is the shared, compiled configuration, the ban registry and the
// ban goroutine behind every worker's Stage. Create the stages with
// NewStage before the workers start, and run Run on its own goroutine.
type Guard struct {
	cfg        Config
	now        func() int64
	retryExtra []byte
	uaPat      *matcher
	ftPat      *matcher
	lim        [numLimits]gcra
	fullN      int // messages in a batch that count as full

	allow atomic.Pointer[allowSnap]
	trust atomic.Pointer[trustSnap]
	wake  chan struct{}

	// mu orders the operator calls and stage registration among
	// themselves and guards the registry; the hot path never takes it.
	mu       sync.Mutex
	registry map[netip.Addr]*banRecord
	// nextExpiry is the earliest expiry in the registry: pruning walks it
	// only when a ban has lapsed.
	nextExpiry int64
	stages     atomic.Pointer[[]*Stage]

	// Ban requests the ban goroutine refused: the registry was full, or
	// the source was allow-listed or trusted by the time it arrived.
	refusedFull, refusedAllowed atomic.Uint64

	xdpBans, xdpErrors, xdpUnbans atomic.Uint64
	lastErr                       atomic.Pointer[string]
}

type allowSnap struct{ prefixes []netip.Prefix }

type banRecord struct {
	reason Reason
	until  int64
}

// New checks cfg and compiles it.
func New(cfg Config) (*Guard, error) {
	cfg.setDefaults()
	if err := cfg.check(); err != nil {
		return nil, err
	}
	g := &Guard{
		cfg:        cfg,
		now:        cfg.Now,
		retryExtra: pipeline.RetryAfter(int(cfg.RetryAfter / time.Second)),
		wake:       make(chan struct{}, 1),
		registry:   map[netip.Addr]*banRecord{},
	}
	lowerAll := func(list []string) [][]byte {
		var out [][]byte
		for _, p := range list {
			out = append(out, []byte(strings.ToLower(p)))
		}
		return out
	}
	g.uaPat = newMatcher(lowerAll(cfg.UserAgents))
	g.ftPat = newMatcher(lowerAll(cfg.FromTo))
	g.lim[limAll] = newGCRA(cfg.All)
	g.lim[limInvite] = newGCRA(cfg.Invite)
	g.lim[limRegister] = newGCRA(cfg.Register)
	g.lim[limBackend] = newGCRA(cfg.Backend)
	g.fullN = (cfg.Batch*cfg.OverloadFill + 99) / 100
	allow := make([]netip.Prefix, len(cfg.Allow))
	for i, p := range cfg.Allow {
		allow[i] = normPrefix(p)
	}
	g.allow.Store(&allowSnap{prefixes: allow})
	g.SetTrusted(cfg.Backends, cfg.NeverBan)
	empty := []*Stage{}
	g.stages.Store(&empty)
	return g, nil
}

// Config returns the effective configuration, defaults filled in.
func (g *Guard) Config() Config { return g.cfg }

func (g *Guard) stageList() []*Stage { return *g.stages.Load() }
