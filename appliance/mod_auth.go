package appliance

import (
	"fmt"
	"net/netip"
	"reflect"
	"time"

	"sipedge/appliance/config"
	"sipedge/pipeline"
	"sipedge/pipeline/stages/auth"
	"sipedge/pipeline/stages/auth/redisstore"
	"sipedge/sipcore"
)

// authModule is [auth]: the auth stage of every worker, the credential
// store behind it (a users file or Redis) and the per-worker lookup
// helpers (started by the stages themselves). a is nil when [auth] is
// disabled.
type authModule struct {
	nop
	env   *ModuleEnv
	a     *auth.Auth
	users *auth.FileStore
	redis *redisstore.Store
}

var methodByName = map[string]sipcore.Method{
	"INVITE": sipcore.MethodINVITE, "REGISTER": sipcore.MethodREGISTER, "MESSAGE": sipcore.MethodMESSAGE,
	"SUBSCRIBE": sipcore.MethodSUBSCRIBE, "NOTIFY": sipcore.MethodNOTIFY, "PUBLISH": sipcore.MethodPUBLISH,
	"REFER": sipcore.MethodREFER, "OPTIONS": sipcore.MethodOPTIONS, "INFO": sipcore.MethodINFO,
	"UPDATE": sipcore.MethodUPDATE, "PRACK": sipcore.MethodPRACK, "BYE": sipcore.MethodBYE,
}

// openAuth opens the credential store and the Auth of [auth]; each
// worker's failures go to that worker's guard stage when the guard runs.
func openAuth(env *ModuleEnv) (Module, error) {
	m := &authModule{env: env}
	ac := env.Cfg.Auth
	if !ac.Enabled {
		return m, nil
	}
	var store auth.Store
	switch ac.Store {
	case "file":
		fs, err := auth.OpenFile(ac.UsersFile)
		if err != nil {
			return nil, fmt.Errorf("appliance: auth.users_file: %w", err)
		}
		m.users = fs
		store = fs
		env.Log.Info("users file loaded", "file", ac.UsersFile, "users", fs.Len())
	case "redis":
		rs, err := redisstore.New(redisstore.Options{
			Addresses: ac.Redis.Addresses, Username: ac.Redis.Username, Password: ac.Redis.Password, Prefix: ac.Redis.Prefix,
			Logf: func(format string, args ...any) { env.Log.Info("auth redis: " + fmt.Sprintf(format, args...)) },
		})
		if err != nil {
			return nil, fmt.Errorf("appliance: [auth.redis]: %w", err)
		}
		m.redis = rs
		store = rs
	default:
		return nil, fmt.Errorf("appliance: auth.store %q: want \"file\" or \"redis\"", ac.Store)
	}
	c := auth.Config{
		Realm:            ac.Realm,
		NonceKey:         sipcore.NewNonceKey([]byte(env.Cfg.Node.Secret)),
		NonceMaxAge:      ac.NonceMaxAge.Std(),
		IgnoreURI:        !ac.CheckURI,
		Store:            store,
		Workers:          env.Workers,
		CacheSize:        ac.CacheSize,
		CacheTTL:         ac.CacheTTL.Std(),
		NegativeTTL:      ac.NegativeTTL.Std(),
		Deadline:         ac.Deadline.Std(),
		DropOnStoreError: ac.Fallback == "drop",
		RetryAfter:       int(ac.RetryAfter.Std() / time.Second),
	}
	c.AllowNoQop, c.FromMustMatch = !ac.RequireQop, ac.FromMustMatch
	c.MaxParkedPerSource, c.IPv6Prefix = ac.MaxParkedPerSource, env.Cfg.Guard.IPv6SourcePrefix
	if g, ok := env.Module("guard").(*guardModule); ok && g.g != nil {
		for i := 0; i < env.Workers; i++ {
			c.WorkerFailures = append(c.WorkerFailures, g.workerSink(i))
		}
	}
	for _, name := range ac.Methods {
		mm, ok := methodByName[name]
		if !ok {
			m.Close()
			return nil, fmt.Errorf("appliance: auth.methods: %q cannot be authenticated", name)
		}
		c.Methods = append(c.Methods, mm)
	}
	for _, alg := range ac.Algorithms {
		switch alg {
		case "SHA-256":
			c.Algorithms = append(c.Algorithms, sipcore.AlgSHA256)
		case "MD5":
			c.Algorithms = append(c.Algorithms, sipcore.AlgMD5)
		default:
			m.Close()
			return nil, fmt.Errorf("appliance: auth.algorithms: %q: want \"SHA-256\" or \"MD5\"", alg)
		}
	}
	for _, s := range ac.Trusted {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("appliance: auth.trusted %q: %v (want a CIDR such as 10.0.0.0/8)", s, err)
		}
		c.Trusted = append(c.Trusted, p)
	}
	a, err := auth.New(c)
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("appliance: %w", err)
	}
	m.a = a
	return m, nil
}

func (m *authModule) Stages() []pipeline.StageMaker {
	if m.a == nil {
		return nil
	}
	return []pipeline.StageMaker{m.a}
}

// Reload re-reads the users file; every other [auth] change needs a restart.
func (m *authModule) Reload(old, cfg *config.Config) []string {
	var restart []string
	if !reflect.DeepEqual(old.Auth, cfg.Auth) {
		restart = append(restart, "[auth] (SIGHUP reloads only the users file's contents)")
	}
	if m.users != nil {
		if err := m.users.Reload(); err != nil {
			m.env.Log.Error("reload: users file refused, the loaded users stay", "file", m.users.Path(), "err", err)
		} else {
			m.env.Log.Info("reload: users file loaded", "file", m.users.Path(), "users", m.users.Len())
		}
	}
	return restart
}

// WriteMetrics writes what the auth counts outside the workers' stages:
// the cache's capacity, the helpers' store lookups and their latency, and
// the store's invalidations.
func (m *authModule) WriteMetrics(p promWriter) {
	if m.a == nil {
		return
	}
	s := m.a.Metrics()
	p.gauge("sipedge_auth_cache_capacity", "Cache capacity, all workers.", float64(s.CacheCapacity))
	p.counter("sipedge_auth_store_lookups_total", "Store lookups.", s.Lookups)
	p.counter("sipedge_auth_store_not_found_total", "Store lookups for absent users.", s.NotFound)
	p.counter("sipedge_auth_store_errors_total", "Store lookups that failed.", s.StoreErrors)
	p.counter("sipedge_auth_late_answers_total", "Store answers after the deadline.", s.LateAnswers)
	p.counter("sipedge_auth_queue_full_total", "Lookups refused: helper queue full.", s.QueueFull)
	p.counter("sipedge_auth_ring_full_total", "Answers refused: worker answer ring full.", s.RingFull)
	p.counter("sipedge_auth_invalidations_total", "Per-user invalidations pushed by the store.", s.Invalidations)
	p.counter("sipedge_auth_invalidate_all_total", "Whole-cache invalidations (reload, reconnection).", s.InvalidateAlls)
	p.latency("sipedge_auth_store_latency_seconds", "Store lookup latency.", s.Latency)
}

// Close stops the helpers (after the workers) and closes the store.
func (m *authModule) Close() {
	if m.a != nil {
		m.a.Close()
		m.a = nil
	}
	if m.redis != nil {
		m.redis.Close()
		m.redis = nil
	}
}
