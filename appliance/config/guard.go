package config

import (
	"net/netip"
	"strings"
	"time"
)

// Guard is [guard]: flood and scanner deflection before the parser
// (pipeline/stages/guard): size and shape checks, per-source rate limits, scanner
// signatures, bans (also in the XDP program with port "afxdp") and
// overload shedding.
type Guard struct {
	// Enabled puts the guard stage first in every worker.
	Enabled bool `toml:"enabled"`
	// MaxMessageSize drops larger datagrams unread, in bytes.
	MaxMessageSize int `toml:"max_message_size"`
	// IPv6SourcePrefix is the IPv6 prefix length counted as one source by
	// per-source limits and bans (and auth's parked lookups).
	IPv6SourcePrefix int `toml:"ipv6_source_prefix"`
	// MaxHeaders and MaxVias drop messages with more header lines or Via
	// values.
	MaxHeaders int `toml:"max_headers"`
	MaxVias    int `toml:"max_vias"`
	// Rate and Burst limit every message of one source (per second, at once).
	Rate  int `toml:"rate"`
	Burst int `toml:"burst"`
	// InviteRate/InviteBurst and RegisterRate/RegisterBurst limit INVITE
	// and REGISTER requests of one source.
	InviteRate    int `toml:"invite_rate"`
	InviteBurst   int `toml:"invite_burst"`
	RegisterRate  int `toml:"register_rate"`
	RegisterBurst int `toml:"register_burst"`
	// OverLimit is "reject" (503 with Retry-After) or "drop".
	OverLimit string `toml:"over_limit"`
	// RetryAfter is the Retry-After of the guard's 503s.
	RetryAfter Duration `toml:"retry_after"`
	// BanAfter bans a source that has stayed over a limit this long.
	BanAfter Duration `toml:"ban_after"`
	// BanTTL is how long an automatic ban lasts.
	BanTTL Duration `toml:"ban_ttl"`
	// UserAgents are case-insensitive substrings of scanner User-Agents.
	UserAgents []string `toml:"user_agents"`
	// FromTo are case-insensitive substrings of scanner From/To headers.
	FromTo []string `toml:"from_to"`
	// AuthFailures failed authentications within AuthWindow ban a source.
	AuthFailures int      `toml:"auth_failures"`
	AuthWindow   Duration `toml:"auth_window"`
	// Allow lists CIDRs or addresses never limited, shed or banned.
	Allow []string `toml:"allow"`
	// AllowBackends adds the dispatcher backends' addresses to Allow.
	AllowBackends bool `toml:"allow_backends"`
	// BackendRate/BackendBurst, ScannerMatches: guard_trust.go.
	BackendRate    int `toml:"backend_rate"`
	BackendBurst   int `toml:"backend_burst"`
	ScannerMatches int `toml:"scanner_matches"`
	// TableSize is the sources tracked per worker; MaxBans the bans
	// enforced per worker.
	TableSize int `toml:"table_size"`
	MaxBans   int `toml:"max_bans"`
	// OverloadBatches receive batches in a row at least OverloadFill
	// percent full make a worker shed new INVITEs and REGISTERs.
	OverloadBatches int `toml:"overload_batches"`
	OverloadFill    int `toml:"overload_fill"`
}

// DefaultScannerUserAgents and DefaultScannerFromTo are the signature
// defaults (the same as pipeline/stages/guard's).
var (
	DefaultScannerUserAgents = []string{"friendly-scanner", "sipvicious", "sipcli", "sipsak", "vaxsipuseragent", "sip-scan", "iwar", "sundayddr", "pplsip"}
	DefaultScannerFromTo     = []string{"sipvicious", "friendly-scanner"}
)

func (g *Guard) setDefaults() {
	*g = Guard{
		Enabled:         true,
		MaxMessageSize:  8192,
		MaxHeaders:      100,
		MaxVias:         40,
		Rate:            200,
		Burst:           400,
		InviteRate:      20,
		InviteBurst:     50,
		RegisterRate:    10,
		RegisterBurst:   50,
		OverLimit:       "reject",
		RetryAfter:      Duration(5 * time.Second),
		BanAfter:        Duration(10 * time.Second),
		BanTTL:          Duration(10 * time.Minute),
		UserAgents:      append([]string(nil), DefaultScannerUserAgents...),
		FromTo:          append([]string(nil), DefaultScannerFromTo...),
		AuthFailures:    10,
		AuthWindow:      Duration(time.Minute),
		Allow:           []string{},
		AllowBackends:   false,
		TableSize:       65536,
		MaxBans:         4096,
		OverloadBatches: 8,
		OverloadFill:    100,
	}
	g.IPv6SourcePrefix = 64
	g.setTrustDefaults()
}

// AllowPrefixes returns Allow as prefixes (a bare address is a /32 or
// /128); call it on a validated Config.
func (g *Guard) AllowPrefixes() []netip.Prefix { return prefixList(g.Allow) }

func parseAllow(s string) (netip.Prefix, bool) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p, err == nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, false
	}
	return netip.PrefixFrom(a, a.BitLen()), true
}

func (g *Guard) check(p *problems, c *Config, _ System) {
	g.checkTrust(p)
	if g.MaxMessageSize < 512 || g.MaxMessageSize > 65535 {
		p.addv("guard.max_message_size", g.MaxMessageSize, "want 512 to 65535 bytes")
	}
	if g.IPv6SourcePrefix < 32 || g.IPv6SourcePrefix > 128 {
		p.addv("guard.ipv6_source_prefix", g.IPv6SourcePrefix, "want 32 to 128 (64, a site's LAN, unless your subscribers get longer prefixes)")
	}
	if g.MaxHeaders < 10 || g.MaxHeaders > 128 {
		p.addv("guard.max_headers", g.MaxHeaders, "want 10 to 128 (the parser's own limit)")
	}
	if g.MaxVias < 2 || g.MaxVias > 64 {
		p.addv("guard.max_vias", g.MaxVias, "want 2 to 64 (the parser's own limit)")
	}
	for _, l := range []struct {
		key         string
		rate, burst int
	}{{"guard.rate", g.Rate, g.Burst}, {"guard.invite_rate", g.InviteRate, g.InviteBurst}, {"guard.register_rate", g.RegisterRate, g.RegisterBurst}} {
		if l.rate < 1 || l.rate > 1_000_000 {
			p.addv(l.key, l.rate, "want 1 to 1000000 messages a second per source")
		}
		bkey := strings.TrimSuffix(l.key, "rate") + "burst"
		if l.burst < 1 || l.burst > 1<<20 {
			p.addv(bkey, l.burst, "want 1 to %d messages at once", 1<<20)
		}
	}
	if g.InviteRate > g.Rate {
		p.addv("guard.invite_rate", g.InviteRate, "above guard.rate (%d), which every message counts against: it would never apply", g.Rate)
	}
	if g.RegisterRate > g.Rate {
		p.addv("guard.register_rate", g.RegisterRate, "above guard.rate (%d), which every message counts against: it would never apply", g.Rate)
	}
	if !oneOf(g.OverLimit, "reject", "drop") {
		p.addv("guard.over_limit", g.OverLimit, `want "reject" (503 with Retry-After) or "drop"`)
	}
	if r := g.RetryAfter.Std(); r < time.Second || r > time.Hour || r%time.Second != 0 {
		p.addv("guard.retry_after", g.RetryAfter, "want whole seconds from 1s to 1h: Retry-After is sent in seconds")
	}
	if b := g.BanAfter.Std(); b < 0 || b > time.Hour {
		p.addv("guard.ban_after", g.BanAfter, "want 0s (ban on the first excess) to 1h")
	}
	if t := g.BanTTL.Std(); t < time.Second || t > 30*24*time.Hour {
		p.addv("guard.ban_ttl", g.BanTTL, "want 1s to 720h")
	}
	sigs := func(key string, list []string) {
		for i, s := range list {
			if strings.TrimSpace(s) == "" || len(s) > 128 {
				p.addv(key+"["+itoa(i)+"]", s, "want 1 to 128 characters, not blank: a blank signature would match everyone")
			}
		}
	}
	sigs("guard.user_agents", g.UserAgents)
	sigs("guard.from_to", g.FromTo)
	if g.AuthFailures < 1 || g.AuthFailures > 10000 {
		p.addv("guard.auth_failures", g.AuthFailures, "want 1 to 10000 failures")
	}
	if w := g.AuthWindow.Std(); w < time.Second || w > 24*time.Hour {
		p.addv("guard.auth_window", g.AuthWindow, "want 1s to 24h")
	}
	for i, s := range g.Allow {
		if _, ok := parseAllow(s); !ok {
			p.addv("guard.allow["+itoa(i)+"]", s, `want a CIDR such as "192.0.2.0/24" or an address such as "2001:db8::1"`)
		}
	}
	if g.TableSize < 1024 || g.TableSize > 1<<24 {
		p.addv("guard.table_size", g.TableSize, "want 1024 to %d sources per worker", 1<<24)
	}
	if g.MaxBans < 16 || g.MaxBans > 1<<20 {
		p.addv("guard.max_bans", g.MaxBans, "want 16 to %d bans per worker", 1<<20)
	}
	if g.OverloadBatches < 1 || g.OverloadBatches > 100000 {
		p.addv("guard.overload_batches", g.OverloadBatches, "want 1 to 100000 batches")
	}
	if g.OverloadFill < 1 || g.OverloadFill > 100 {
		p.addv("guard.overload_fill", g.OverloadFill, "want a percentage from 1 to 100")
	}
}
