package redisstore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"

	"sipedge/pipeline/stages/auth"
	"sipedge/sipcore"
)

// DefaultPrefix starts every user key.
const DefaultPrefix = "sipedge:user:"

// Options configure the store ([auth.redis] in config.toml).
type Options struct {
	// Addresses are host:port of the server, or of some cluster nodes
	// (the rest are discovered).
	Addresses []string
	// Username and Password authenticate (ACL); empty for none.
	Username, Password string
	// Prefix starts every key (DefaultPrefix).
	Prefix string
	// DialTimeout bounds a connection attempt (1s).
	DialTimeout time.Duration
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts (100ms, 5s).
	MinBackoff, MaxBackoff time.Duration
	// Logf, when set, gets connection state changes.
	Logf func(format string, args ...any)
	// OnState, when set, is told when the store finds Redis reachable
	// (true) or lost (false).
	OnState func(connected bool)
	// OnInvalidate, when set, is called after each pushed invalidation
	// was passed on (tests await it).
	OnInvalidate func(realm, user string)
}

// Store is the Redis credential store. It implements auth.Store and
// auth.Notifier.
type Store struct {
	opt    Options
	client atomic.Pointer[rueidis.Client]

	mu   sync.Mutex
	invs []auth.Invalidator

	kick      chan struct{}
	ctx       context.Context
	cancel    context.CancelFunc
	done      chan struct{}
	connected atomic.Bool
	reconnect atomic.Uint64
}

// New starts the store. It does not wait for Redis: until a connection
// works, lookups fail (and messages get the fallback) while the store
// keeps trying with backoff.
func New(opt Options) (*Store, error) {
	if len(opt.Addresses) == 0 {
		return nil, errors.New("redisstore: no address: set [auth.redis] addresses, such as [\"127.0.0.1:6379\"]")
	}
	for _, a := range opt.Addresses {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("redisstore: address %q: want host:port", a)
		}
	}
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	if opt.DialTimeout <= 0 {
		opt.DialTimeout = time.Second
	}
	if opt.MinBackoff <= 0 {
		opt.MinBackoff = 100 * time.Millisecond
	}
	if opt.MaxBackoff < opt.MinBackoff {
		opt.MaxBackoff = max(5*time.Second, opt.MinBackoff)
	}
	s := &Store{opt: opt, kick: make(chan struct{}, 1), done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.run()
	return s, nil
}

// Key is the Redis key of user in realm.
func (s *Store) Key(realm, user string) string { return s.opt.Prefix + realm + ":" + user }

// Name implements auth.Store.
func (s *Store) Name() string { return "redis" }

// Connected reports whether the last check found every node answering.
func (s *Store) Connected() bool { return s.connected.Load() }

// Reconnections counts the times the store found Redis back after losing it.
func (s *Store) Reconnections() uint64 { return s.reconnect.Load() }

// Notify implements auth.Notifier.
func (s *Store) Notify(inv auth.Invalidator) {
	s.mu.Lock()
	s.invs = append(s.invs, inv)
	s.mu.Unlock()
}

func (s *Store) invalidators() []auth.Invalidator {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.invs
}

// ErrUnavailable is returned while no connection to Redis works.
var ErrUnavailable = errors.New("redisstore: Redis is unreachable; reconnecting (cached users keep working)")

// Lookup implements auth.Store: HMGET of the user's two HA1 fields.
func (s *Store) Lookup(ctx context.Context, realm, user string) (auth.Entry, error) {
	cp := s.client.Load()
	if cp == nil {
		return auth.Entry{}, ErrUnavailable
	}
	c := *cp
	vals, err := c.Do(ctx, c.B().Hmget().Key(s.Key(realm, user)).Field("ha1md5", "ha1sha256").Build()).ToArray()
	if err != nil {
		// A dropped connection is noticed through onInvalidations(nil);
		// a slow answer must not flush every cache.
		return auth.Entry{}, fmt.Errorf("redisstore: HMGET %s: %w", s.Key(realm, user), err)
	}
	var e auth.Entry
	for i, alg := range [2]sipcore.Algorithm{sipcore.AlgMD5, sipcore.AlgSHA256} {
		if i >= len(vals) || vals[i].IsNil() {
			continue
		}
		v, err := vals[i].ToString()
		if err != nil {
			return auth.Entry{}, fmt.Errorf("redisstore: %s: %w", s.Key(realm, user), err)
		}
		if err := e.SetHA1(alg, []byte(v)); err != nil {
			return auth.Entry{}, fmt.Errorf("redisstore: %s field %d: %w", s.Key(realm, user), i, err)
		}
	}
	if e.Has == 0 {
		return auth.Entry{}, auth.ErrNotFound
	}
	return e, nil
}

// onInvalidations receives the tracking pushes. nil means the connection
// closed (or the server flushed): changes may be missed, so check.
func (s *Store) onInvalidations(msgs []rueidis.RedisMessage) {
	if msgs == nil {
		s.lost()
		return
	}
	for i := range msgs {
		key, err := msgs[i].ToString()
		if err != nil || !strings.HasPrefix(key, s.opt.Prefix) {
			continue
		}
		realm, user, ok := strings.Cut(key[len(s.opt.Prefix):], ":")
		if !ok {
			continue
		}
		for _, inv := range s.invalidators() {
			inv.Invalidate([]byte(realm), []byte(user))
		}
		if f := s.opt.OnInvalidate; f != nil {
			f(realm, user)
		}
	}
}

// lost asks the supervisor to check the connection.
func (s *Store) lost() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// Close stops the store and its connections.
func (s *Store) Close() {
	s.cancel()
	<-s.done
	if cp := s.client.Load(); cp != nil {
		(*cp).Close()
	}
}

func (s *Store) logf(format string, args ...any) {
	if s.opt.Logf != nil {
		s.opt.Logf(format, args...)
	}
}

// run connects, then checks the connection whenever it may have dropped:
// PING every node, backing off while they do not answer; when they answer
// after a loss, invalidate everything cached.
func (s *Store) run() {
	defer close(s.done)
	backoff := s.opt.MinBackoff
	wait := func() bool {
		d := backoff + rand.N(backoff/2+1)
		backoff = min(2*backoff, s.opt.MaxBackoff)
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return true
		case <-s.ctx.Done():
			return false
		}
	}
	for s.client.Load() == nil {
		c, err := rueidis.NewClient(rueidis.ClientOption{
			InitAddress:           s.opt.Addresses,
			Username:              s.opt.Username,
			Password:              s.opt.Password,
			Dialer:                net.Dialer{Timeout: s.opt.DialTimeout},
			ClientTrackingOptions: []string{"PREFIX", s.opt.Prefix, "BCAST"},
			OnInvalidations:       s.onInvalidations,
			// rueidis's own cache is not used (auth keeps its own);
			// tracking only needs it left enabled.
			DisableRetry: true,
			// One connection per node: each tracking connection gets
			// its own copy of every push, and one is enough.
			PipelineMultiplex: -1,
		})
		if err == nil {
			s.client.Store(&c)
			s.setState(true)
			backoff = s.opt.MinBackoff
			s.logf("redisstore: connected to %v", s.opt.Addresses)
			break
		}
		s.logf("redisstore: connecting to %v: %v (retrying)", s.opt.Addresses, err)
		if !wait() {
			return
		}
	}
	c := *s.client.Load()
	for {
		select {
		case <-s.kick:
		case <-s.ctx.Done():
			return
		}
		lost := false
		for !s.pingAll(c) {
			if !lost {
				lost = true
				s.setState(false)
				s.logf("redisstore: lost Redis; cached users keep working, others get the fallback")
			}
			if !wait() {
				return
			}
		}
		// Back, or a flush: whatever changed meanwhile was not pushed.
		if lost {
			s.reconnect.Add(1)
			s.logf("redisstore: Redis is back; dropping cached credentials")
		}
		backoff = s.opt.MinBackoff
		for _, inv := range s.invalidators() {
			inv.InvalidateAll()
		}
		s.setState(true)
	}
}

func (s *Store) setState(up bool) {
	s.connected.Store(up)
	if f := s.opt.OnState; f != nil {
		f(up)
	}
}

func (s *Store) pingAll(c rueidis.Client) bool {
	ctx, cancel := context.WithTimeout(s.ctx, s.opt.DialTimeout)
	defer cancel()
	for _, n := range c.Nodes() {
		if err := n.Do(ctx, n.B().Ping().Build()).Error(); err != nil {
			return false
		}
	}
	return true
}
