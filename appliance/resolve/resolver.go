package resolve

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// Target is one place a name resolved to.
type Target struct {
	Addr netip.AddrPort
	// Priority and Weight are the SRV record's (RFC 2782) when FromSRV,
	// zero otherwise.
	Priority, Weight uint16
	FromSRV          bool
	// Host is the host name whose A/AAAA record gave Addr ("" for a
	// numeric host).
	Host string
}

// Result is what a name resolved to and for how long it holds.
type Result struct {
	Targets []Target
	// TTL is the smallest TTL of the records used, clamped to the
	// resolver's floor and ceiling; 0 for a numeric host (never looked
	// up again).
	TTL time.Duration
}

// ErrNoTargets is a lookup that worked but found nothing to send to: no
// records, or an SRV target of "." (RFC 2782: the service is not there).
var ErrNoTargets = errors.New("no targets")

// Config configures a Resolver.
type Config struct {
	// Servers are the DNS servers asked, in order, as "ip:port" or "ip"
	// (port 53); empty reads the nameservers of /etc/resolv.conf.
	Servers []string
	// Timeout bounds one query to one server (2s when 0).
	Timeout time.Duration
	// TTLFloor and TTLCeiling clamp how long records are kept (5s and 5m
	// when 0): a floor so that a zero TTL does not turn into a lookup
	// loop, a ceiling so that a day-long TTL still lets changes in.
	TTLFloor, TTLCeiling time.Duration
	// Linger is how long a Watcher keeps a target that left the DNS, with
	// weight 0: no new calls, but still known as a backend, so the
	// in-dialog requests of its calls under way are still relayed. 0
	// drops it at once.
	Linger time.Duration
	// Family limits host lookups to the addresses the node can send to:
	// AnyFamily asks A and AAAA, IPv4 only A, IPv6 only AAAA.
	Family Family
	// Service is what a domain without a port is looked up as; the zero
	// value is SIP over UDP (SIPUDP).
	Service Service
}

// Service is the RFC 3263 steps for one kind of server: the NAPTR service
// tried first, the SRV prefix, and the port of a host without SRV records.
type Service struct {
	// NAPTR is the NAPTR service field to follow ("SIP+D2U"); "" skips
	// NAPTR.
	NAPTR string
	// SRV is the SRV name's prefix ("_sip._udp"), asked as SRV.domain.
	SRV string
	// Port is the port of A/AAAA targets found without SRV records.
	Port uint16
}

// SIPUDP is SIP over UDP (RFC 3263 4.1 and 4.2): NAPTR SIP+D2U, then
// _sip._udp SRV, then A/AAAA on 5060.
var SIPUDP = Service{NAPTR: "SIP+D2U", SRV: "_sip._udp", Port: DefaultPort}

// NGUDP is an rtpengine ng control socket. No NAPTR service or SRV name
// is registered for ng, so NAPTR is skipped (a NAPTR record could only
// point at SIP) and the SRV name is "_ng._udp" (RFC 2782's _Service._Proto
// shape, the label rtpengine deployments use); without SRV records the
// host's A/AAAA on 2223, the ng port of rtpengine's sample configuration.
var NGUDP = Service{SRV: "_ng._udp", Port: 2223}

// Family is which address records a Resolver asks for.
type Family uint8

// Families.
const (
	AnyFamily Family = iota
	IPv4
	IPv6
)

// FamilyOf is the family of the node's own address a (AnyFamily when a is
// not valid).
func FamilyOf(a netip.Addr) Family {
	switch {
	case !a.IsValid():
		return AnyFamily
	case a.Unmap().Is4():
		return IPv4
	}
	return IPv6
}

func (f Family) types() []uint16 {
	switch f {
	case IPv4:
		return []uint16{dns.TypeA}
	case IPv6:
		return []uint16{dns.TypeAAAA}
	}
	return []uint16{dns.TypeA, dns.TypeAAAA}
}

// Resolver looks names up per RFC 3263 for UDP. It is safe for concurrent
// use.
type Resolver struct {
	cfg     Config
	servers []string
	udp     *dns.Client
	tcp     *dns.Client
}

// New checks cfg and makes the resolver.
func New(cfg Config) (*Resolver, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.TTLFloor <= 0 {
		cfg.TTLFloor = 5 * time.Second
	}
	if cfg.TTLCeiling <= 0 {
		cfg.TTLCeiling = 5 * time.Minute
	}
	if cfg.Service == (Service{}) {
		cfg.Service = SIPUDP
	}
	if cfg.TTLCeiling < cfg.TTLFloor {
		return nil, fmt.Errorf("resolve: TTL ceiling %v is below the floor %v: raise the ceiling", cfg.TTLCeiling, cfg.TTLFloor)
	}
	r := &Resolver{cfg: cfg,
		udp: &dns.Client{Net: "udp", Timeout: cfg.Timeout},
		tcp: &dns.Client{Net: "tcp", Timeout: cfg.Timeout},
	}
	servers := cfg.Servers
	if len(servers) == 0 {
		cc, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil {
			return nil, fmt.Errorf("resolve: no DNS servers configured and /etc/resolv.conf unreadable: %v (list servers explicitly)", err)
		}
		for _, s := range cc.Servers {
			servers = append(servers, net.JoinHostPort(s, cc.Port))
		}
		if len(servers) == 0 {
			return nil, errors.New("resolve: /etc/resolv.conf lists no nameserver: list DNS servers explicitly")
		}
	}
	for _, s := range servers {
		ap, err := ParseServer(s)
		if err != nil {
			return nil, fmt.Errorf("resolve: DNS server %q: %v", s, err)
		}
		r.servers = append(r.servers, ap.String())
	}
	return r, nil
}

// ParseServer parses a DNS server address, "ip" (port 53) or "ip:port".
func ParseServer(s string) (netip.AddrPort, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap, nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.AddrPort{}, errors.New("want an IP address, or IP:port")
	}
	return netip.AddrPortFrom(ip, 53), nil
}

// Resolve finds the targets of n by RFC 3263 section 4, for UDP: a numeric
// host is its own target; an explicit port asks A/AAAA only; otherwise
// NAPTR (unless the URI gave a transport) picks the SIP+D2U service's SRV
// name, else _sip._udp.host is asked; without SRV records the host's
// A/AAAA on port 5060. Another Config.Service changes those three steps.
// A lookup that finds nothing is ErrNoTargets.
func (r *Resolver) Resolve(ctx context.Context, n Name) (Result, error) {
	svc := r.cfg.Service
	if n.Static() {
		port := n.Port
		if port == 0 {
			port = svc.Port
		}
		return Result{Targets: []Target{{Addr: netip.AddrPortFrom(n.IP, port)}}}, nil
	}
	q := &query{r: r, ttl: r.cfg.TTLCeiling}
	var targets []Target
	var err error
	switch {
	case n.Port != 0:
		targets, err = q.hosts(ctx, n.Host, n.Port, nil)
	case strings.HasPrefix(n.Host, "_"): // an SRV name given directly
		targets, err = q.srv(ctx, n.Host)
	default:
		srvName := ""
		if n.Transport == "" && svc.NAPTR != "" {
			if srvName, err = q.naptr(ctx, n.Host, svc.NAPTR); err != nil {
				return Result{}, err
			}
		}
		if srvName == "" {
			srvName = svc.SRV + "." + n.Host
		}
		targets, err = q.srv(ctx, srvName)
		if errors.Is(err, errNoRecords) {
			targets, err = q.hosts(ctx, n.Host, svc.Port, nil)
		}
	}
	if errors.Is(err, errNoRecords) || (err == nil && len(targets) == 0) {
		return Result{}, fmt.Errorf("%s: %w", n.Input, ErrNoTargets)
	}
	if err != nil {
		return Result{}, fmt.Errorf("%s: %w", n.Input, err)
	}
	slices.SortFunc(targets, func(a, b Target) int {
		return cmp.Or(cmp.Compare(a.Priority, b.Priority), a.Addr.Compare(b.Addr))
	})
	targets = slices.CompactFunc(targets, func(a, b Target) bool { return a.Addr == b.Addr })
	return Result{Targets: targets, TTL: max(q.ttl, r.cfg.TTLFloor)}, nil
}

// maxSRV bounds the SRV records one name contributes (each may cost two
// address lookups).
const maxSRV = 64

// errNoRecords is a name with no records of the type asked (NXDOMAIN or
// an empty answer): the next step of RFC 3263 applies.
var errNoRecords = errors.New("no records")

// query is one resolution: it keeps the smallest TTL seen.
type query struct {
	r   *Resolver
	ttl time.Duration
}

func (q *query) seen(rr dns.RR) {
	q.ttl = min(q.ttl, time.Duration(rr.Header().Ttl)*time.Second)
}

// ask sends one question to each server in turn until one answers, over
// TCP when the UDP answer was truncated. It returns the answer and
// additional sections; errNoRecords when the name has no record of qtype.
func (q *query) ask(ctx context.Context, name string, qtype uint16) (ans, extra []dns.RR, err error) {
	// An authoritative server answers a CNAME alone (a recursive one
	// follows it): follow a few hops ourselves.
	for range maxCNAME {
		var alias string
		ans, extra, alias, err = q.askOnce(ctx, name, qtype)
		if alias == "" {
			return ans, extra, err
		}
		name = alias
	}
	return nil, nil, fmt.Errorf("%s %s: more than %d CNAMEs in a row", dns.TypeToString[qtype], name, maxCNAME)
}

// maxCNAME bounds a chain of aliases.
const maxCNAME = 8

// askOnce is one question; alias is the CNAME target when the answer
// holds only an alias of name.
func (q *query) askOnce(ctx context.Context, name string, qtype uint16) (ans, extra []dns.RR, alias string, err error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	m.RecursionDesired = true
	m.SetEdns0(4096, false)
	var last error
	for _, s := range q.r.servers {
		resp, _, err := q.r.udp.ExchangeContext(ctx, m, s)
		if err == nil && resp.Truncated {
			resp, _, err = q.r.tcp.ExchangeContext(ctx, m, s)
		}
		if err != nil {
			last = fmt.Errorf("%s %s to %s: %w", dns.TypeToString[qtype], name, s, err)
			if ctx.Err() != nil {
				return nil, nil, "", last
			}
			continue
		}
		switch resp.Rcode {
		case dns.RcodeSuccess:
		case dns.RcodeNameError:
			return nil, nil, "", errNoRecords
		default:
			last = fmt.Errorf("%s %s: server %s answered %s", dns.TypeToString[qtype], name, s, dns.RcodeToString[resp.Rcode])
			continue
		}
		for _, rr := range resp.Answer {
			if rr.Header().Rrtype == qtype {
				ans = append(ans, rr)
				q.seen(rr)
			}
		}
		if len(ans) == 0 {
			for _, rr := range resp.Answer {
				if c, ok := rr.(*dns.CNAME); ok && strings.EqualFold(c.Hdr.Name, dns.Fqdn(name)) {
					q.seen(rr)
					return nil, nil, c.Target, nil
				}
			}
			return nil, nil, "", errNoRecords
		}
		return ans, resp.Extra, "", nil
	}
	return nil, nil, "", last
}

// naptr returns the SRV name of the most preferred NAPTR record of host
// for service (such as SIP+D2U), "" when it has none.
func (q *query) naptr(ctx context.Context, host, service string) (string, error) {
	ans, _, err := q.ask(ctx, host, dns.TypeNAPTR)
	if errors.Is(err, errNoRecords) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var best *dns.NAPTR
	for _, rr := range ans {
		n := rr.(*dns.NAPTR)
		if !strings.EqualFold(n.Service, service) || !strings.EqualFold(n.Flags, "s") || n.Replacement == "." {
			continue // another transport, or not a terminal SRV rule: not for a UDP client
		}
		if best == nil || n.Order < best.Order || (n.Order == best.Order && n.Preference < best.Preference) {
			best = n
		}
	}
	if best == nil {
		return "", nil
	}
	return strings.TrimSuffix(strings.ToLower(best.Replacement), "."), nil
}

// srv resolves an SRV name to its targets' addresses, with the records'
// priority and weight. A target that does not resolve is left out; one
// that fails to and leaves nothing is the error.
func (q *query) srv(ctx context.Context, name string) ([]Target, error) {
	ans, extra, err := q.ask(ctx, name, dns.TypeSRV)
	if err != nil {
		return nil, err
	}
	var out []Target
	var lastErr error
	if len(ans) > maxSRV {
		ans = ans[:maxSRV] // a refresh must stay a few lookups, whatever the zone holds
	}
	for _, rr := range ans {
		s := rr.(*dns.SRV)
		if s.Target == "." || s.Port == 0 {
			continue // RFC 2782: decidedly not available here
		}
		host := strings.TrimSuffix(strings.ToLower(s.Target), ".")
		ts, err := q.hosts(ctx, host, s.Port, extra)
		if err != nil {
			lastErr = err
			continue
		}
		for _, t := range ts {
			t.Priority, t.Weight, t.FromSRV = s.Priority, s.Weight, true
			out = append(out, t)
		}
	}
	if len(out) == 0 && lastErr != nil && !errors.Is(lastErr, errNoRecords) {
		return nil, lastErr
	}
	return out, nil
}

// hosts resolves host's A and AAAA records, from the SRV answer's
// additional section when the server put them there.
func (q *query) hosts(ctx context.Context, host string, port uint16, extra []dns.RR) ([]Target, error) {
	var out []Target
	add := func(rr dns.RR) {
		var ip netip.Addr
		switch a := rr.(type) {
		case *dns.A:
			ip, _ = netip.AddrFromSlice(a.A.To4())
		case *dns.AAAA:
			ip, _ = netip.AddrFromSlice(a.AAAA)
		}
		if ip.IsValid() && !ip.IsUnspecified() && (q.r.cfg.Family == AnyFamily || FamilyOf(ip) == q.r.cfg.Family) {
			out = append(out, Target{Addr: netip.AddrPortFrom(ip.Unmap(), port), Host: host})
		}
	}
	fq := dns.Fqdn(host)
	for _, rr := range extra {
		if t := rr.Header().Rrtype; (t == dns.TypeA || t == dns.TypeAAAA) && strings.EqualFold(rr.Header().Name, fq) {
			q.seen(rr)
			add(rr)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	var errs [2]error
	for i, t := range q.r.cfg.Family.types() {
		ans, _, err := q.ask(ctx, host, t)
		errs[i] = err
		for _, rr := range ans {
			add(rr)
		}
	}
	if len(out) > 0 {
		return out, nil
	}
	for _, e := range errs {
		if e != nil && !errors.Is(e, errNoRecords) {
			return nil, e
		}
	}
	return nil, errNoRecords
}
