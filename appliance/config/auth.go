package config

import (
	"net/netip"
	"strings"
	"time"
)

// Auth is [auth]: digest authentication of requests (pipeline/stages/auth).
type Auth struct {
	// Enabled turns authentication on. Off by default so that the laptop
	// default runs without credentials.
	Enabled bool `toml:"enabled"`
	// Realm is the digest realm, usually the SIP domain.
	Realm string `toml:"realm"`
	// Methods are the requests that must authenticate.
	Methods []string `toml:"methods"`
	// Trusted are CIDRs whose requests skip authentication.
	Trusted []string `toml:"trusted"`
	// Algorithms are offered in challenges, most preferred first.
	Algorithms []string `toml:"algorithms"`
	// NonceMaxAge is how long a nonce is accepted before stale=true.
	NonceMaxAge Duration `toml:"nonce_max_age"`
	// CheckURI requires the credentials' uri to be the Request-URI.
	CheckURI bool `toml:"check_uri"`
	// RequireQop refuses RFC 2069 credentials (no qop=auth, so no
	// nonce-count to stop a replay): they are challenged again.
	RequireQop bool `toml:"require_qop"`
	// FromMustMatch refuses (403) a request whose From user is not the
	// authenticated user.
	FromMustMatch bool `toml:"from_must_match"`
	// Store is "file" or "redis".
	Store string `toml:"store"`
	// UsersFile is the users file of the file store.
	UsersFile string `toml:"users_file"`
	// CacheSize bounds the cached users per worker.
	CacheSize int `toml:"cache_size"`
	// CacheTTL bounds how long a cached user is trusted; "0s" until
	// invalidated or evicted.
	CacheTTL Duration `toml:"cache_ttl"`
	// NegativeTTL is how long an absent user is remembered as absent.
	NegativeTTL Duration `toml:"negative_ttl"`
	// Deadline is how long a request waits for the store.
	Deadline Duration `toml:"deadline"`
	// MaxParkedPerSource bounds the store lookups one source starts per
	// worker per deadline.
	MaxParkedPerSource int `toml:"max_parked_per_source"`
	// Fallback is what a request whose lookup failed or was late gets:
	// "reject" (503 with Retry-After) or "drop".
	Fallback string `toml:"fallback"`
	// RetryAfter is the Retry-After of that 503.
	RetryAfter Duration `toml:"retry_after"`
	// Redis configures store = "redis".
	Redis AuthRedis `toml:"redis"`
}

// AuthRedis is [auth.redis].
type AuthRedis struct {
	// Addresses are host:port of the server or of cluster nodes.
	Addresses []string `toml:"addresses"`
	// Username and Password authenticate (Redis ACL); empty for none.
	Username string `toml:"username"`
	Password string `toml:"password"`
	// Prefix starts every user key: <prefix><realm>:<user>.
	Prefix string `toml:"prefix"`
}

var authMethods = []string{"INVITE", "REGISTER", "MESSAGE", "SUBSCRIBE", "NOTIFY", "PUBLISH", "REFER", "OPTIONS", "INFO", "UPDATE", "PRACK", "BYE"}

func (a *Auth) setDefaults() {
	*a = Auth{
		Realm:       "",
		Methods:     []string{"INVITE", "REGISTER", "MESSAGE", "SUBSCRIBE"},
		Trusted:     []string{},
		Algorithms:  []string{"SHA-256", "MD5"},
		NonceMaxAge: Duration(5 * time.Minute),
		CheckURI:    true,
		Store:       "file",
		UsersFile:   "",
		CacheSize:   16384,
		CacheTTL:    Duration(10 * time.Minute),
		NegativeTTL: Duration(30 * time.Second),
		Deadline:    Duration(50 * time.Millisecond),
		Fallback:    "reject",
		RetryAfter:  Duration(5 * time.Second),
		Redis: AuthRedis{
			Addresses: []string{"127.0.0.1:6379"},
			Prefix:    "sipedge:user:",
		},
	}
	a.RequireQop, a.FromMustMatch, a.MaxParkedPerSource = true, true, 16
}

func (a *Auth) check(p *problems, _ *Config, _ System) {
	if !a.Enabled {
		return // nothing of it is used
	}
	if a.Realm == "" || len(a.Realm) > 256 || strings.ContainsAny(a.Realm, "\"\\\r\n") {
		p.addv("auth.realm", a.Realm, "want the digest realm, usually the SIP domain (1 to 256 bytes, no quotes, backslashes or line breaks)")
	}
	if len(a.Methods) == 0 {
		p.add("auth.methods", "empty: list the requests to authenticate, such as [\"INVITE\", \"REGISTER\"], or set enabled = false")
	}
	for i, m := range a.Methods {
		if !oneOf(m, authMethods...) {
			p.addv("auth.methods["+itoa(i)+"]", m, "want one of %s (ACK and CANCEL cannot be challenged)", strings.Join(authMethods, ", "))
		}
	}
	for i, c := range a.Trusted {
		if _, err := netip.ParsePrefix(c); err != nil {
			p.addv("auth.trusted["+itoa(i)+"]", c, "want a CIDR such as \"10.0.0.0/8\" (a single address is \"10.0.0.1/32\")")
		}
	}
	if len(a.Algorithms) == 0 {
		p.add("auth.algorithms", "empty: offer at least one of \"SHA-256\" and \"MD5\"")
	}
	for i, alg := range a.Algorithms {
		if !oneOf(alg, "SHA-256", "MD5") {
			p.addv("auth.algorithms["+itoa(i)+"]", alg, `want "SHA-256" or "MD5" (the HA1 values stores keep)`)
		}
	}
	if d := a.NonceMaxAge.Std(); d < time.Second || d > 24*time.Hour {
		p.addv("auth.nonce_max_age", a.NonceMaxAge, "want 1s to 24h")
	}
	switch a.Store {
	case "file":
		if a.UsersFile == "" {
			p.add("auth.users_file", "empty with store = \"file\": give the users file (sipedge-users creates it)")
		}
	case "redis":
		if len(a.Redis.Addresses) == 0 {
			p.add("auth.redis.addresses", "empty with store = \"redis\": list at least one host:port")
		}
		for i, ad := range a.Redis.Addresses {
			if !isHostPort(ad) {
				p.addv("auth.redis.addresses["+itoa(i)+"]", ad, "want host:port")
			}
		}
		if a.Redis.Prefix == "" {
			p.add("auth.redis.prefix", "empty: keys need a prefix, such as \"sipedge:user:\"")
		}
	default:
		p.addv("auth.store", a.Store, `want "file" or "redis"`)
	}
	if a.CacheSize < 8 || a.CacheSize > 1<<24 {
		p.addv("auth.cache_size", a.CacheSize, "want 8 to %d users per worker (about 130 bytes each)", 1<<24)
	}
	if a.CacheTTL.Std() < 0 {
		p.addv("auth.cache_ttl", a.CacheTTL, "want 0s (until invalidated) or a positive duration")
	}
	if d := a.NegativeTTL.Std(); d < time.Second || d > time.Hour {
		p.addv("auth.negative_ttl", a.NegativeTTL, "want 1s to 1h")
	}
	if d := a.Deadline.Std(); d < time.Millisecond || d > 10*time.Second {
		p.addv("auth.deadline", a.Deadline, "want 1ms to 10s (SIP retransmits after 500ms)")
	}
	if a.MaxParkedPerSource < 1 || a.MaxParkedPerSource > 1<<15 {
		p.addv("auth.max_parked_per_source", a.MaxParkedPerSource, "want 1 to %d lookups per source per worker", 1<<15)
	}
	if !oneOf(a.Fallback, "reject", "drop") {
		p.addv("auth.fallback", a.Fallback, `want "reject" (503 with Retry-After) or "drop"`)
	}
	if r := a.RetryAfter.Std(); r < time.Second || r > maxRetryAfter || r%time.Second != 0 {
		p.addv("auth.retry_after", a.RetryAfter, "want whole seconds from 1s to %v", maxRetryAfter)
	}
}
