package appliance

import (
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"time"

	"sipedge/appliance/config"
	"sipedge/pipeline"
	"sipedge/pipeline/stages/auth"
	"sipedge/pipeline/stages/auth/redisstore"
	"sipedge/pipeline/stages/guard"
	"sipedge/sipcore"
)

// guardConfig maps [guard] to guard.Config. banner is the XDP program in
// afxdp mode, nil otherwise.
func guardConfig(cfg *config.Config, specs []pipeline.BackendSpec, banner guard.Banner) guard.Config {
	g := cfg.Guard
	over := guard.Reject
	if g.OverLimit == "drop" {
		over = guard.Silent
	}
	banAfter := g.BanAfter.Std()
	if banAfter == 0 {
		banAfter = -1 // the guard's "ban on the first excess"; 0 would mean its default
	}
	gc := guard.Config{
		MaxMessageSize: g.MaxMessageSize,
		MaxHeaders:     g.MaxHeaders,
		MaxVias:        g.MaxVias,
		All:            guard.Limit{Rate: float64(g.Rate), Burst: g.Burst},
		Invite:         guard.Limit{Rate: float64(g.InviteRate), Burst: g.InviteBurst},
		Register:       guard.Limit{Rate: float64(g.RegisterRate), Burst: g.RegisterBurst},
		OverLimit:      over,
		RetryAfter:     g.RetryAfter.Std(),
		BanAfter:       banAfter,
		BanTTL:         g.BanTTL.Std(),
		// Non-nil even when empty: an empty list in the file means no
		// signatures, not the package defaults.
		UserAgents:      append([]string{}, g.UserAgents...),
		FromTo:          append([]string{}, g.FromTo...),
		AuthFailures:    g.AuthFailures,
		AuthWindow:      g.AuthWindow.Std(),
		Allow:           configAllow(cfg, specs),
		TableSize:       g.TableSize,
		MaxBans:         g.MaxBans,
		Batch:           cfg.IO.Batch,
		OverloadBatches: g.OverloadBatches,
		OverloadFill:    g.OverloadFill,
	}
	if banner != nil {
		gc.Banner = banner
	}
	return gc
}

// configAllow is the allow-list the configuration asks for: [guard] allow,
// plus each backend's address when allow_backends is set.
func configAllow(cfg *config.Config, specs []pipeline.BackendSpec) []netip.Prefix {
	out := cfg.Guard.AllowPrefixes()
	if cfg.Guard.AllowBackends {
		for _, s := range specs {
			a := s.Addr.Addr().Unmap()
			p := netip.PrefixFrom(a, a.BitLen())
			if !slices.Contains(out, p) {
				out = append(out, p)
			}
		}
	}
	return out
}

var methodByName = map[string]sipcore.Method{
	"INVITE": sipcore.MethodINVITE, "REGISTER": sipcore.MethodREGISTER, "MESSAGE": sipcore.MethodMESSAGE,
	"SUBSCRIBE": sipcore.MethodSUBSCRIBE, "NOTIFY": sipcore.MethodNOTIFY, "PUBLISH": sipcore.MethodPUBLISH,
	"REFER": sipcore.MethodREFER, "OPTIONS": sipcore.MethodOPTIONS, "INFO": sipcore.MethodINFO,
	"UPDATE": sipcore.MethodUPDATE, "PRACK": sipcore.MethodPRACK, "BYE": sipcore.MethodBYE,
}

// openAuth builds the credential store and the Auth of [auth] for workers
// workers; failures are the workers' guard stages (nil: no guard), each
// told of the failures its own worker saw.
func (d *Daemon) openAuth(cfg *config.Config, workers int, failures []auth.FailureSink) error {
	ac := cfg.Auth
	var store auth.Store
	switch ac.Store {
	case "file":
		fs, err := auth.OpenFile(ac.UsersFile)
		if err != nil {
			return fmt.Errorf("appliance: auth.users_file: %w", err)
		}
		d.users = fs
		store = fs
		d.log.Info("users file loaded", "file", ac.UsersFile, "users", fs.Len())
	case "redis":
		rs, err := redisstore.New(redisstore.Options{
			Addresses: ac.Redis.Addresses, Username: ac.Redis.Username, Password: ac.Redis.Password, Prefix: ac.Redis.Prefix,
			Logf: func(format string, args ...any) { d.log.Info("auth redis: " + fmt.Sprintf(format, args...)) },
		})
		if err != nil {
			return fmt.Errorf("appliance: [auth.redis]: %w", err)
		}
		d.redis = rs
		store = rs
	default:
		return fmt.Errorf("appliance: auth.store %q: want \"file\" or \"redis\"", ac.Store)
	}
	c := auth.Config{
		Realm:            ac.Realm,
		NonceKey:         sipcore.NewNonceKey([]byte(cfg.Node.Secret)),
		NonceMaxAge:      ac.NonceMaxAge.Std(),
		IgnoreURI:        !ac.CheckURI,
		Store:            store,
		Workers:          workers,
		CacheSize:        ac.CacheSize,
		CacheTTL:         ac.CacheTTL.Std(),
		NegativeTTL:      ac.NegativeTTL.Std(),
		Deadline:         ac.Deadline.Std(),
		DropOnStoreError: ac.Fallback == "drop",
		RetryAfter:       int(ac.RetryAfter.Std() / time.Second),
		WorkerFailures:   failures,
	}
	for _, m := range ac.Methods {
		mm, ok := methodByName[m]
		if !ok {
			return fmt.Errorf("appliance: auth.methods: %q cannot be authenticated", m)
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
			return fmt.Errorf("appliance: auth.algorithms: %q: want \"SHA-256\" or \"MD5\"", alg)
		}
	}
	for _, s := range ac.Trusted {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("appliance: auth.trusted %q: %v (want a CIDR such as 10.0.0.0/8)", s, err)
		}
		c.Trusted = append(c.Trusted, p)
	}
	a, err := auth.New(c)
	if err != nil {
		return fmt.Errorf("appliance: %w", err)
	}
	d.auth = a
	return nil
}

// reloadSecurityLocked applies what SIGHUP can change in [guard] and [auth]:
// the allow-list (entries the file added or removed; the operator's own stay)
// and the users file. Every other change is logged as needing a restart.
func (d *Daemon) reloadSecurityLocked(old, cfg *config.Config, oldSpecs, specs []pipeline.BackendSpec) {
	if d.guard != nil && cfg.Guard.Enabled {
		was, now := configAllow(old, oldSpecs), configAllow(cfg, specs)
		for _, p := range was {
			if !slices.Contains(now, p) && d.guard.Disallow(p) {
				d.log.Info("reload: allow-list entry removed", "prefix", p.String())
			}
		}
		for _, p := range now {
			if !slices.Contains(was, p) {
				if err := d.guard.Allow(p); err != nil {
					d.log.Error("reload: allow-list entry not added", "prefix", p.String(), "err", err)
				} else {
					d.log.Info("reload: allow-list entry added", "prefix", p.String())
				}
			}
		}
	}
	if d.users != nil {
		if err := d.users.Reload(); err != nil {
			d.log.Error("reload: users file refused, the loaded users stay", "file", d.users.Path(), "err", err)
		} else {
			d.log.Info("reload: users file loaded", "file", d.users.Path(), "users", d.users.Len())
		}
	}
}

// securityRestartOnly lists [guard] and [auth] changes Reload cannot apply.
func securityRestartOnly(old, cfg *config.Config) []string {
	var out []string
	og, ng := old.Guard, cfg.Guard
	og.Allow, ng.Allow = nil, nil
	og.AllowBackends, ng.AllowBackends = false, false
	if !reflect.DeepEqual(og, ng) {
		// guard.Guard compiles its limits and signatures once; only the
		// allow-list is live.
		out = append(out, "[guard] (all but allow and allow_backends)")
	}
	if old.Guard.Enabled != cfg.Guard.Enabled {
		out = append(out, "guard.allow (the guard is not running)")
	}
	if !reflect.DeepEqual(old.Auth, cfg.Auth) {
		out = append(out, "[auth] (SIGHUP reloads only the users file's contents)")
	}
	return out
}
