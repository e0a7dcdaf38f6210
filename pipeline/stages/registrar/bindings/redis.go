package bindings

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/rueidis"
)

// DefaultPrefix starts every binding key.
const DefaultPrefix = "sipedge:loc:"

// RedisOptions configure the Redis store ([registrar.redis]).
type RedisOptions struct {
	// Addresses are host:port of the server or of some cluster nodes.
	Addresses []string
	// Username and Password authenticate (ACL); empty for none.
	Username, Password string
	// Prefix starts every key (DefaultPrefix); it may not contain '{'.
	Prefix string
	// DialTimeout bounds a connection attempt (1s).
	DialTimeout time.Duration
	// Logf, when set, gets connection state changes.
	Logf func(format string, args ...any)
}

// Redis keeps bindings in Redis or Redis Cluster. Each AOR is a hash
// "<prefix>{<aor>}" (binding ID -> Call-ID, CSeq, write time and the
// binding) and each binding's expiry is a key "<prefix>{<aor>}:e:<ID>"
// whose TTL Redis keeps: the hash tag puts an AOR and its expiries on one
// shard, so one script applies a REGISTER atomically, and a refresh that
// changes nothing but the expiry is one PEXPIRE, not a rewrite.
//
// Changes reach every edge's location cache as Redis pushed invalidations
// (client tracking, BCAST on the prefix), expiries included: Redis
// invalidates a key when it expires.
type Redis struct {
	opt    RedisOptions
	client atomic.Pointer[rueidis.Client]

	mu     sync.Mutex
	notify []func(string)

	ctx      context.Context
	cancel   context.CancelFunc
	done     chan struct{}
	checking atomic.Bool // recheck runs

	// Writes counts binding rewrites, Refreshes expiry-only updates (for
	// metrics and tests).
	Writes, Refreshes, Errors atomic.Uint64
}

// NewRedis starts the store; it connects in the background (with
// backoff), and until it has, every call returns ErrUnavailable.
func NewRedis(opt RedisOptions) (*Redis, error) {
	if len(opt.Addresses) == 0 {
		return nil, errors.New("bindings: no Redis address: set [registrar.redis] addresses, such as [\"127.0.0.1:6379\"]")
	}
	for i, a := range opt.Addresses {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return nil, fmt.Errorf("bindings: [registrar.redis] addresses[%d] %q: want host:port", i, a)
		}
	}
	if opt.Prefix == "" {
		opt.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(opt.Prefix, "{}") {
		return nil, fmt.Errorf("bindings: prefix %q: may not contain { or } (the AOR is the key's hash tag)", opt.Prefix)
	}
	if opt.DialTimeout <= 0 {
		opt.DialTimeout = time.Second
	}
	s := &Redis{opt: opt, done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	go s.connect()
	return s, nil
}

func (s *Redis) connect() {
	defer close(s.done)
	backoff := 100 * time.Millisecond
	for {
		c, err := rueidis.NewClient(rueidis.ClientOption{
			InitAddress:           s.opt.Addresses,
			Username:              s.opt.Username,
			Password:              s.opt.Password,
			Dialer:                net.Dialer{Timeout: s.opt.DialTimeout},
			ClientTrackingOptions: []string{"PREFIX", s.opt.Prefix, "BCAST"},
			OnInvalidations:       s.onInvalidations,
			// Each tracking connection gets every push: one per node.
			PipelineMultiplex: -1,
		})
		if err == nil {
			s.client.Store(&c)
			s.logf("bindings: connected to Redis %v", s.opt.Addresses)
			return
		}
		s.logf("bindings: connecting to Redis %v: %v (retrying)", s.opt.Addresses, err)
		if !s.wait(&backoff, 5*time.Second) {
			return
		}
	}
}

// wait sleeps *backoff, then doubles it up to most; false when the store
// is closing.
func (s *Redis) wait(backoff *time.Duration, most time.Duration) bool {
	t := time.NewTimer(*backoff)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
		return false
	}
	*backoff = min(2**backoff, most)
	return true
}

// Connected reports whether the store has a client (it may still fail).
func (s *Redis) Connected() bool { return s.client.Load() != nil }

func (s *Redis) logf(format string, args ...any) {
	if s.opt.Logf != nil {
		s.opt.Logf(format, args...)
	}
}

// Close stops the store.
func (s *Redis) Close() {
	s.cancel()
	<-s.done
	if cp := s.client.Load(); cp != nil {
		(*cp).Close()
	}
}

// IndexKey is the key of aor's hash.
func (s *Redis) IndexKey(aor string) string { return s.opt.Prefix + "{" + aor + "}" }

// Notify implements Store.
func (s *Redis) Notify(f func(aor string)) {
	s.mu.Lock()
	s.notify = append(s.notify, f)
	s.mu.Unlock()
}

func (s *Redis) listeners() []func(string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.notify
}

// onInvalidations passes each changed AOR on; nil means a connection
// closed (or the server flushed): changes may have been missed.
func (s *Redis) onInvalidations(msgs []rueidis.RedisMessage) {
	fs := s.listeners()
	if msgs == nil {
		if s.checking.CompareAndSwap(false, true) {
			go s.recheck()
		}
		return
	}
	for i := range msgs {
		key, err := msgs[i].ToString()
		if err != nil || !strings.HasPrefix(key, s.opt.Prefix+"{") {
			continue
		}
		aor, _, ok := strings.Cut(key[len(s.opt.Prefix)+1:], "}")
		if !ok {
			continue
		}
		for _, f := range fs {
			f(aor)
		}
	}
}

// recheck waits until Redis answers again, then tells every listener to
// forget everything: what changed meanwhile was not pushed. Until then the
// caches keep serving what they have (lookups from the local copy while
// Redis is down), each entry bounded by its own expiry.
func (s *Redis) recheck() {
	defer s.checking.Store(false)
	backoff := 50 * time.Millisecond
	for {
		if c, err := s.cl(); err == nil {
			ctx, cancel := context.WithTimeout(s.ctx, s.opt.DialTimeout)
			ok := true
			for _, n := range c.Nodes() {
				if n.Do(ctx, n.B().Ping().Build()).Error() != nil {
					ok = false
					break
				}
			}
			cancel()
			if ok {
				for _, f := range s.listeners() {
					f("")
				}
				return
			}
		}
		if !s.wait(&backoff, 2*time.Second) {
			return
		}
	}
}

func (s *Redis) cl() (rueidis.Client, error) {
	cp := s.client.Load()
	if cp == nil {
		return nil, ErrUnavailable
	}
	return *cp, nil
}

// applyScript is Apply in one step on the AOR's shard. Keys other than
// KEYS[1] share its hash tag, so they live in the same slot.
var applyScript = rueidis.NewLuaScript(`
local idx = KEYS[1]
local ep = idx .. ':e:'
local now = tonumber(ARGV[1])
local maxc = tonumber(ARGV[2])
local evict = ARGV[3] == '1'
local callid = ARGV[4]
local cseq = tonumber(ARGV[5])
local star = ARGV[6] == '1'
local keep = tonumber(ARGV[7])
local cur, n, x = {}, 0, 0
local flat = redis.call('HGETALL', idx)
for i = 1, #flat, 2 do
  local id, v = flat[i], flat[i+1]
  local ttl = redis.call('PTTL', ep .. id)
  if ttl <= 0 then
    redis.call('HDEL', idx, id)
    x = x + 1
  else
    local ci, cs, rg, pl = string.match(v, '^([^\n]*)\n(%d+)\n(%d+)\n(.*)$')
    cur[id] = {ci = ci, cs = tonumber(cs), rg = tonumber(rg), pl = pl, v = v, ttl = ttl}
    n = n + 1
  end
end
local ch = {}
for i = 8, #ARGV, 3 do ch[#ch+1] = {id = ARGV[i], pl = ARGV[i+1], exp = tonumber(ARGV[i+2])} end
local function result(status)
  local out = {status}
  for id, b in pairs(cur) do out[#out+1] = id; out[#out+1] = b.v; out[#out+1] = b.ttl end
  return out
end
local function late(b) return b ~= nil and b.ci == callid and b.cs > cseq end
local function again(b) return b ~= nil and b.ci == callid and b.cs == cseq end
local touched = {}
if star then
  for _, b in pairs(cur) do touched[#touched+1] = b end
else
  for _, c in ipairs(ch) do touched[#touched+1] = cur[c.id] end
end
for _, b in pairs(touched) do if late(b) then return result('order') end end
for _, b in pairs(touched) do if again(b) then return result('ok:0:0:0:0:' .. x) end end
local ev = {}
if maxc > 0 and not star then
  local m, touched = n, {}
  for _, c in ipairs(ch) do
    touched[c.id] = true
    if c.exp <= 0 and cur[c.id] then m = m - 1 elseif c.exp > 0 and not cur[c.id] then m = m + 1 end
  end
  if m > maxc then
    if not evict then return result('toomany') end
    local old = {}
    for id in pairs(cur) do if not touched[id] then old[#old+1] = id end end
    table.sort(old, function(a, b) if cur[a].rg ~= cur[b].rg then return cur[a].rg < cur[b].rg end return a < b end)
    for _, id in ipairs(old) do if m <= maxc then break end ev[#ev+1] = id; m = m - 1 end
    if m > maxc then return result('toomany') end
  end
end
local w, r, d, e = 0, 0, 0, 0
local function del(id) redis.call('HDEL', idx, id); redis.call('DEL', ep .. id); cur[id] = nil end
for _, id in ipairs(ev) do del(id); e = e + 1 end
if star then for id in pairs(cur) do del(id); d = d + 1 end end
local maxexp = 0
for _, c in ipairs(ch) do
  local b = cur[c.id]
  if c.exp <= 0 then
    if b then del(c.id); d = d + 1 end
  elseif b and b.ci == callid and b.pl == c.pl then
    redis.call('PEXPIRE', ep .. c.id, c.exp); b.ttl = c.exp; r = r + 1
  else
    local v = callid .. '\n' .. ARGV[5] .. '\n' .. ARGV[1] .. '\n' .. c.pl
    redis.call('HSET', idx, c.id, v)
    redis.call('SET', ep .. c.id, '1', 'PX', c.exp)
    cur[c.id] = {ci = callid, cs = cseq, rg = now, pl = c.pl, v = v, ttl = c.exp}
    w = w + 1
  end
  if c.exp > maxexp then maxexp = c.exp end
end
if next(cur) ~= nil and maxexp > 0 then
  local t = redis.call('PTTL', idx)
  if t == -1 or (t >= 0 and t < maxexp) then redis.call('PEXPIRE', idx, maxexp + keep) end
end
return result('ok:' .. w .. ':' .. r .. ':' .. d .. ':' .. e .. ':' .. x)
`)

// lookupScript reads an AOR's live bindings with their remaining TTLs.
var lookupScript = rueidis.NewLuaScriptReadOnly(`
local idx = KEYS[1]
local ep = idx .. ':e:'
local flat = redis.call('HGETALL', idx)
local out = {}
for i = 1, #flat, 2 do
  local ttl = redis.call('PTTL', ep .. flat[i])
  if ttl > 0 then out[#out+1] = flat[i]; out[#out+1] = flat[i+1]; out[#out+1] = ttl end
end
return out
`)

// Apply implements Store.
func (s *Redis) Apply(ctx context.Context, u *Update) (Result, error) {
	c, err := s.cl()
	if err != nil {
		return Result{}, err
	}
	if strings.ContainsAny(u.AOR, "{}") {
		return Result{}, fmt.Errorf("bindings: AOR %q: may not contain { or }", u.AOR)
	}
	args := make([]string, 0, 7+3*len(u.Changes))
	b2s := func(b bool) string {
		if b {
			return "1"
		}
		return "0"
	}
	args = append(args, strconv.FormatInt(u.Now.UnixMilli(), 10), strconv.Itoa(u.MaxContacts), b2s(u.EvictOldest),
		u.CallID, strconv.FormatUint(uint64(u.CSeq), 10), b2s(u.Star), strconv.FormatInt(u.Keep.Milliseconds(), 10))
	for _, ch := range u.Changes {
		ms := ch.Expires.Milliseconds()
		if ch.Expires > 0 && ms == 0 {
			ms = 1
		}
		args = append(args, ch.Binding.ID, ch.Binding.payload(), strconv.FormatInt(ms, 10))
	}
	arr, err := applyScript.Exec(ctx, c, []string{s.IndexKey(u.AOR)}, args).ToArray()
	if err != nil {
		s.Errors.Add(1)
		return Result{}, fmt.Errorf("bindings: storing %s: %w", u.AOR, err)
	}
	if len(arr) == 0 {
		s.Errors.Add(1)
		return Result{}, fmt.Errorf("bindings: storing %s: empty script answer", u.AOR)
	}
	st, _ := arr[0].ToString()
	var res Result
	switch {
	case st == "order":
		res.Outcome = OutOfOrder
	case st == "toomany":
		res.Outcome = TooMany
	case strings.HasPrefix(st, "ok:"):
		f := strings.Split(st, ":")
		if len(f) == 6 {
			res.Written, _ = strconv.Atoi(f[1])
			res.Refreshed, _ = strconv.Atoi(f[2])
			res.Removed, _ = strconv.Atoi(f[3])
			res.Evicted, _ = strconv.Atoi(f[4])
			res.Expired, _ = strconv.Atoi(f[5])
		}
		s.Writes.Add(uint64(res.Written))
		s.Refreshes.Add(uint64(res.Refreshed))
	default:
		s.Errors.Add(1)
		return Result{}, fmt.Errorf("bindings: storing %s: unexpected script status %q", u.AOR, st)
	}
	res.Bindings, err = decodeFlat(arr[1:], u.Now)
	return res, err
}

// Lookup implements Store.
func (s *Redis) Lookup(ctx context.Context, aor string) ([]Binding, error) {
	c, err := s.cl()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	arr, err := lookupScript.Exec(ctx, c, []string{s.IndexKey(aor)}, nil).ToArray()
	if err != nil {
		s.Errors.Add(1)
		return nil, fmt.Errorf("bindings: looking up %s: %w", aor, err)
	}
	return decodeFlat(arr, now)
}

func decodeFlat(arr []rueidis.RedisMessage, now time.Time) ([]Binding, error) {
	if len(arr)%3 != 0 {
		return nil, fmt.Errorf("bindings: malformed script answer (%d values)", len(arr))
	}
	var out []Binding
	for i := 0; i < len(arr); i += 3 {
		id, err1 := arr[i].ToString()
		v, err2 := arr[i+1].ToString()
		ttl, err3 := arr[i+2].ToInt64()
		if err1 != nil || err2 != nil || err3 != nil {
			return nil, errors.New("bindings: malformed script answer")
		}
		b, err := decode(id, v, time.Duration(ttl)*time.Millisecond, now)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	Sort(out)
	return out, nil
}
