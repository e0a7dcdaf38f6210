package appliance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"time"

	"sipedge/appliance/config"
	"sipedge/pipeline"
	"sipedge/pipeline/node"
	"sipedge/pipeline/stages/auth"
	"sipedge/pipeline/stages/location"
	"sipedge/pipeline/stages/registrar"
	"sipedge/pipeline/stages/registrar/bindings"
)

// registrarModule is [registrar]: the registrar and/or location stages of
// every worker over one binding store (memory, or Redis shared by the
// cluster), the admin lookup of an AOR, and their metrics. Both stages are
// nil when the section is disabled.
type registrarModule struct {
	nop
	env   *ModuleEnv
	store bindings.Store
	redis *bindings.Redis
	reg   *registrar.Registrar
	loc   *location.Location
	ka    *registrar.Keepalive
	doms  *bindings.Domains
}

// openRegistrar opens the store and the stages of the node's roles.
func openRegistrar(env *ModuleEnv) (Module, error) {
	m := &registrarModule{env: env}
	rc := env.Cfg.Registrar
	if !rc.Enabled {
		return m, nil
	}
	if !env.Self.IsValid() {
		return nil, errNoSelf
	}
	switch rc.Store {
	case "memory":
		m.store = bindings.NewMemory()
	case "redis":
		r, err := bindings.NewRedis(bindings.RedisOptions{
			Addresses: rc.Redis.Addresses, Username: rc.Redis.Username, Password: rc.Redis.Password, Prefix: rc.Redis.Prefix,
			Logf: func(format string, args ...any) { env.Log.Info("registrar redis: " + fmt.Sprintf(format, args...)) },
		})
		if err != nil {
			return nil, fmt.Errorf("appliance: [registrar.redis]: %w", err)
		}
		m.redis, m.store = r, r
	default:
		return nil, fmt.Errorf("appliance: registrar.store %q: want \"memory\" or \"redis\"", rc.Store)
	}
	retry := int(rc.RetryAfter.Std() / time.Second)
	nd, err := node.New(node.Config{Key: env.Key, Names: append([]string{env.Self.Addr().String()}, env.Cfg.Node.Addresses...), Ports: []uint16{env.Self.Port()}, MarkLateOffer: env.Cfg.Media.Enabled})
	if err != nil {
		m.Close()
		return nil, fmt.Errorf("appliance: %w", err)
	}
	doms := bindings.NewDomains(rc.Domains, bindings.DomainOptions{IgnoreDomain: !rc.UseDomain, IsNode: nd.IsName})
	m.doms = doms
	if rc.HasRole("registrar") {
		r, err := registrar.New(registrar.Config{
			Domains: doms, DefaultExpires: rc.DefaultExpires.Std(), MinExpires: rc.MinExpires.Std(), MaxExpires: rc.MaxExpires.Std(),
			MaxContacts: rc.MaxContacts, EvictOldest: rc.OnMaxContacts == "evict-oldest",
			Store: m.store, Self: env.Self, Workers: env.Workers, Deadline: rc.Deadline.Std(), RetryAfter: retry,
			Realm: authRealm(env), Node: nd,
		})
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("appliance: [registrar]: %w", err)
		}
		m.reg = r
		if d := rc.KeepaliveInterval.Std(); d > 0 {
			m.ka = &registrar.Keepalive{Registrar: r, Store: m.store, Self: env.Self, Key: env.Key, Interval: d}
		}
	}
	if rc.HasRole("location") {
		sentBy := env.Self.String()
		lc := location.Config{
			Domains: doms, Store: m.store, Node: nd, Self: env.Self, SentBy: sentBy,
			Workers: env.Workers, CacheSize: rc.CacheSize, CacheTTL: rc.CacheTTL.Std(), NegativeTTL: rc.NegativeTTL.Std(),
			Deadline: rc.Deadline.Std(), RetryAfter: retry, Exists: userExists(env),
		}
		if env.Cfg.Dispatcher.RecordRoute {
			lc.RecordRoute = "sip:" + sentBy + ";lr"
		}
		l, err := location.New(lc)
		if err != nil {
			m.Close()
			return nil, fmt.Errorf("appliance: [registrar]: %w", err)
		}
		m.loc = l
	}
	return m, nil
}

// authRealm is the realm REGISTERs authenticate in, "" when they do not.
func authRealm(env *ModuleEnv) string {
	if am, ok := env.Module("auth").(*authModule); ok && am.a != nil {
		for _, m := range env.Cfg.Auth.Methods {
			if m == "REGISTER" {
				return am.a.Realm()
			}
		}
	}
	return ""
}

// userExists asks the credential store of [auth], when there is one,
// whether an AOR's user exists: the location stage then answers 480 (no
// binding) rather than 404 (no such user).
func userExists(env *ModuleEnv) func(ctx context.Context, aor string) (bool, error) {
	am, ok := env.Module("auth").(*authModule)
	if !ok || am.a == nil {
		return nil
	}
	var st auth.Store
	switch {
	case am.users != nil:
		st = am.users
	case am.redis != nil:
		st = am.redis
	default:
		return nil
	}
	realm := am.a.Realm()
	return func(ctx context.Context, aor string) (bool, error) {
		user, _, _ := strings.Cut(strings.TrimPrefix(aor, "sip:"), "@")
		_, err := st.Lookup(ctx, realm, user)
		if errors.Is(err, auth.ErrNotFound) {
			return false, nil
		}
		return err == nil, err
	}
}

// Start runs the keepalives of the flows this node holds.
func (m *registrarModule) Start(ctx context.Context, goFn func(func())) error {
	if ka := m.ka; ka != nil {
		goFn(func() {
			if err := ka.Run(ctx); err != nil {
				m.env.Log.Error("registrar keepalives stopped", "err", err)
			}
		})
	}
	return nil
}

func (m *registrarModule) Stages() []pipeline.StageMaker {
	var out []pipeline.StageMaker
	if m.reg != nil {
		out = append(out, m.reg)
	}
	if m.loc != nil {
		out = append(out, m.loc)
	}
	return out
}

// Reload: every [registrar] change needs a restart (the store and the
// stages' caches are built once).
func (m *registrarModule) Reload(old, cfg *config.Config) []string {
	if !reflect.DeepEqual(old.Registrar, cfg.Registrar) {
		return []string{"[registrar]"}
	}
	return nil
}

// BindingJSON is one binding as GET /registrar/aor shows it.
type BindingJSON struct {
	Contact    string   `json:"contact"`
	ExpiresIn  float64  `json:"expires_in_seconds"`
	Q          float64  `json:"q"`
	Received   string   `json:"received"`
	Node       string   `json:"node"`
	NAT        bool     `json:"nat"`
	Path       []string `json:"path,omitempty"`
	Instance   string   `json:"instance,omitempty"`
	RegID      int64    `json:"reg_id,omitempty"`
	CallID     string   `json:"call_id"`
	CSeq       uint32   `json:"cseq"`
	Registered string   `json:"registered"`
}

// Routes adds GET /registrar/aor?aor=sip:alice@example.com: the AOR's
// bindings as the store has them.
func (m *registrarModule) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /registrar/aor", func(w http.ResponseWriter, r *http.Request) {
		if m.store == nil {
			apiError(w, http.StatusConflict, "the registrar is disabled: set [registrar] enabled = true and restart the appliance")
			return
		}
		aor := r.URL.Query().Get("aor")
		if !strings.HasPrefix(aor, "sip:") || !strings.Contains(aor, "@") {
			apiError(w, http.StatusBadRequest, "give ?aor=sip:user@domain (the address-of-record, as in To of the REGISTER; with use_domain = false the domain is ignored)")
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		bs, err := m.store.Lookup(ctx, m.doms.CanonicalAOR(aor))
		if err != nil {
			apiError(w, http.StatusServiceUnavailable, "%v", err)
			return
		}
		out := make([]BindingJSON, len(bs))
		for i, b := range bs {
			out[i] = BindingJSON{Contact: b.Contact, ExpiresIn: time.Until(b.Expires).Round(time.Second).Seconds(), Q: float64(b.Q) / 1000,
				Received: b.Received, Node: b.Node, NAT: b.NAT, Path: b.Path, Instance: b.Instance, RegID: b.RegID,
				CallID: b.CallID, CSeq: b.CSeq, Registered: b.Registered.UTC().Format(time.RFC3339)}
		}
		writeJSON(w, http.StatusOK, out)
	})
}

// WriteMetrics writes the store's and the helpers' counts: registrations
// written, refreshed, removed and evicted, fetches, lookups, Redis latency
// and errors.
func (m *registrarModule) WriteMetrics(p promWriter) {
	if r := m.reg; r != nil {
		s := r.Stats()
		p.counter("sipedge_registrar_bindings_written_total", "Bindings written (new or changed).", s.Written.Load())
		p.counter("sipedge_registrar_bindings_refreshed_total", "Bindings refreshed: expiry moved, nothing rewritten.", s.Refreshed.Load())
		p.counter("sipedge_registrar_bindings_removed_total", "Bindings removed (Expires: 0, Contact: *).", s.Removed.Load())
		p.counter("sipedge_registrar_bindings_evicted_total", "Bindings evicted for max_contacts.", s.Evicted.Load())
		p.counter("sipedge_registrar_bindings_expired_total", "Bindings found expired (Redis expired them) when their AOR registered again.", s.Expired.Load())
		p.counter("sipedge_registrar_fetches_total", "REGISTERs without Contact (fetches).", s.Fetches.Load())
		p.counter("sipedge_registrar_store_failures_total", "Store calls that failed.", s.Errors.Load())
		p.counter("sipedge_registrar_queue_full_total", "REGISTERs refused: helper queue full.", s.QueueFull.Load())
		p.latency("sipedge_registrar_store_latency_seconds", "Binding store latency (REGISTERs).", s.Latency.Snapshot())
	}
	if ka := m.ka; ka != nil {
		p.gauge("sipedge_registrar_flows", "NATed contacts whose flow this node holds (it sends their keepalives).", float64(m.reg.Flows().Len()))
		p.counter("sipedge_registrar_keepalives_sent_total", "Keepalive OPTIONS sent to NATed contacts.", ka.Sent.Load())
		p.counter("sipedge_registrar_keepalives_answered_total", "Keepalive OPTIONS the contact answered.", ka.Answered.Load())
	}
	if l := m.loc; l != nil {
		p.counter("sipedge_location_store_lookups_total", "Location lookups in the store (cache misses).", l.Lookups.Load())
		p.counter("sipedge_location_store_failures_total", "Location lookups that failed.", l.Errors.Load())
		p.counter("sipedge_location_invalidations_total", "AOR invalidations pushed by the store.", l.Invalidations.Load())
	}
	if r := m.redis; r != nil {
		p.counter("sipedge_registrar_redis_errors_total", "Redis calls of the binding store that failed.", r.Errors.Load())
	}
}

// Close stops the helpers (after the workers) and closes the store.
func (m *registrarModule) Close() {
	if m.reg != nil {
		m.reg.Close()
		m.reg = nil
	}
	if m.loc != nil {
		m.loc.Close()
		m.loc = nil
	}
	if m.redis != nil {
		m.redis.Close()
		m.redis = nil
	}
}
