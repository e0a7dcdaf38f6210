package config

import (
	"strings"
	"time"
)

// Registrar is [registrar]: the registrar and location roles of an edge
// (pipeline/stages/registrar and pipeline/stages/location), bindings in
// memory (one node) or Redis (a cluster of edges).
type Registrar struct {
	// Enabled turns the roles on; off, the node only dispatches.
	Enabled bool `toml:"enabled"`
	// Roles are "registrar" (answer REGISTER) and/or "location" (route
	// requests for the domains by their bindings).
	Roles []string `toml:"roles"`
	// Domains are the SIP domains the cluster is the registrar of.
	Domains []string `toml:"domains"`
	// UseDomain keys bindings by user and domain; false keys them by user
	// alone (Kamailio's use_domain = 0) and makes the node's own
	// addresses local domains too.
	UseDomain bool `toml:"use_domain"`
	// DefaultExpires, MinExpires and MaxExpires bound registrations.
	DefaultExpires Duration `toml:"default_expires"`
	MinExpires     Duration `toml:"min_expires"`
	MaxExpires     Duration `toml:"max_expires"`
	// MaxContacts bounds an AOR's bindings (0: no bound); OnMaxContacts
	// is "refuse" (403) or "evict-oldest".
	MaxContacts   int    `toml:"max_contacts"`
	OnMaxContacts string `toml:"on_max_contacts"`
	// Store is "memory" (this node only) or "redis".
	Store string `toml:"store"`
	// Deadline is how long a request waits for the store; RetryAfter is
	// the Retry-After of the 503 it gets when the store fails or is late.
	Deadline   Duration `toml:"deadline"`
	RetryAfter Duration `toml:"retry_after"`
	// CacheSize bounds the AORs each worker caches; CacheTTL how long a
	// cached location is trusted without a push; NegativeTTL how long "no
	// binding" is remembered.
	CacheSize   int      `toml:"cache_size"`
	CacheTTL    Duration `toml:"cache_ttl"`
	NegativeTTL Duration `toml:"negative_ttl"`
	// KeepaliveInterval is how often the node sends OPTIONS to the NATed
	// contacts whose REGISTER it received; "0s" sends none.
	KeepaliveInterval Duration `toml:"keepalive_interval"`
	// Redis configures store = "redis".
	Redis RegistrarRedis `toml:"redis"`
}

// RegistrarRedis is [registrar.redis].
type RegistrarRedis struct {
	Addresses []string `toml:"addresses"`
	Username  string   `toml:"username"`
	Password  string   `toml:"password"`
	Prefix    string   `toml:"prefix"`
}

// HasRole reports whether role is one of the node's roles (and the
// section is enabled).
func (r *Registrar) HasRole(role string) bool {
	if !r.Enabled {
		return false
	}
	for _, x := range r.Roles {
		if x == role {
			return true
		}
	}
	return false
}

func (r *Registrar) setDefaults() {
	*r = Registrar{
		Roles:             []string{"registrar", "location"},
		Domains:           []string{},
		UseDomain:         true,
		DefaultExpires:    Duration(time.Hour),
		MinExpires:        Duration(60 * time.Second),
		MaxExpires:        Duration(2 * time.Hour),
		MaxContacts:       10,
		OnMaxContacts:     "refuse",
		Store:             "memory",
		Deadline:          Duration(500 * time.Millisecond),
		RetryAfter:        Duration(5 * time.Second),
		CacheSize:         65536,
		CacheTTL:          Duration(5 * time.Minute),
		NegativeTTL:       Duration(5 * time.Second),
		KeepaliveInterval: Duration(30 * time.Second),
		Redis: RegistrarRedis{
			Addresses: []string{"127.0.0.1:6379"},
			Prefix:    "sipedge:loc:",
		},
	}
}

func (r *Registrar) check(p *problems, _ *Config, _ System) {
	if !r.Enabled {
		return
	}
	if len(r.Roles) == 0 {
		p.add("registrar.roles", `empty: give "registrar", "location" or both, or set enabled = false`)
	}
	for i, role := range r.Roles {
		if !oneOf(role, "registrar", "location") {
			p.addv("registrar.roles["+itoa(i)+"]", role, `want "registrar" or "location"`)
		}
	}
	if len(r.Domains) == 0 {
		p.add("registrar.domains", `empty: list the SIP domains to register, such as ["example.com"]`)
	}
	for i, d := range r.Domains {
		if d == "" || strings.ContainsAny(d, " \t:;<>@{}\"") {
			p.addv("registrar.domains["+itoa(i)+"]", d, "want a domain name such as \"example.com\" (no port, user or parameters)")
		}
	}
	mn, df, mx := r.MinExpires.Std(), r.DefaultExpires.Std(), r.MaxExpires.Std()
	for _, k := range []struct {
		key string
		d   Duration
	}{{"registrar.min_expires", r.MinExpires}, {"registrar.default_expires", r.DefaultExpires}, {"registrar.max_expires", r.MaxExpires}} {
		if d := k.d.Std(); d < time.Second || d > 7*24*time.Hour || d%time.Second != 0 {
			p.addv(k.key, k.d, "want whole seconds from 1s to 168h")
		}
	}
	if mn > df || df > mx {
		p.add("registrar.default_expires", "want min_expires (%v) <= default_expires (%v) <= max_expires (%v)", r.MinExpires, r.DefaultExpires, r.MaxExpires)
	}
	if r.MaxContacts < 0 || r.MaxContacts > 1000 {
		p.addv("registrar.max_contacts", r.MaxContacts, "want 0 (no bound) to 1000")
	}
	if !oneOf(r.OnMaxContacts, "refuse", "evict-oldest") {
		p.addv("registrar.on_max_contacts", r.OnMaxContacts, `want "refuse" (403) or "evict-oldest"`)
	}
	switch r.Store {
	case "memory":
	case "redis":
		if len(r.Redis.Addresses) == 0 {
			p.add("registrar.redis.addresses", `empty with store = "redis": list at least one host:port`)
		}
		for i, ad := range r.Redis.Addresses {
			if !isHostPort(ad) {
				p.addv("registrar.redis.addresses["+itoa(i)+"]", ad, "want host:port")
			}
		}
		if r.Redis.Prefix == "" || strings.ContainsAny(r.Redis.Prefix, "{}") {
			p.addv("registrar.redis.prefix", r.Redis.Prefix, `want a key prefix without braces, such as "sipedge:loc:" (the AOR is the key's hash tag)`)
		}
	default:
		p.addv("registrar.store", r.Store, `want "memory" (this node only) or "redis" (shared by the cluster)`)
	}
	if d := r.Deadline.Std(); d < time.Millisecond || d > 10*time.Second {
		p.addv("registrar.deadline", r.Deadline, "want 1ms to 10s (SIP retransmits after 500ms)")
	}
	if d := r.RetryAfter.Std(); d < time.Second || d > maxRetryAfter || d%time.Second != 0 {
		p.addv("registrar.retry_after", r.RetryAfter, "want whole seconds from 1s to 1h")
	}
	if r.CacheSize < 8 || r.CacheSize > 1<<24 {
		p.addv("registrar.cache_size", r.CacheSize, "want 8 to %d AORs per worker", 1<<24)
	}
	if d := r.CacheTTL.Std(); d < time.Second || d > 24*time.Hour {
		p.addv("registrar.cache_ttl", r.CacheTTL, "want 1s to 24h")
	}
	if d := r.KeepaliveInterval.Std(); d != 0 && (d < 100*time.Millisecond || d > time.Hour) {
		p.addv("registrar.keepalive_interval", r.KeepaliveInterval, `want "0s" (none) or 100ms to 1h (NATs forget idle UDP bindings after 30s to a few minutes)`)
	}
	if d := r.NegativeTTL.Std(); d < 100*time.Millisecond || d > time.Hour {
		p.addv("registrar.negative_ttl", r.NegativeTTL, "want 100ms to 1h")
	}
}
