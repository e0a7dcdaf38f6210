package pipeline

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"sipedge/sipcore"
)

// ProxyConfig configures the stateless proxy and dispatcher stages
// ([node] and [dispatcher] in config.toml).
type ProxyConfig struct {
	// Key is the cluster key (sipcore.NewKey of [node] secret).
	Key *sipcore.Key
	// SentBy is our Via sent-by, "192.0.2.1:5060" or "[2001:db8::1]:5060".
	SentBy string
	// RecordRoute is the URI we record-route initial requests with
	// ("sip:192.0.2.1:5060;lr"); empty adds none.
	RecordRoute string
	// Names are the hosts that mean "this appliance" in a Request-URI or
	// Route: its addresses and DNS names (compared case-insensitively).
	Names []string
	// Ports are the ports we listen on; a URI with no port means 5060.
	// Empty means {5060}.
	Ports []uint16
	// Backends is the dispatcher's backend list (shared by all workers).
	Backends *Backends
	// RetryAfter is the Retry-After (seconds) of 503s when no backend is up.
	RetryAfter int
	// Allow and Accept are the values of our answer to OPTIONS.
	Allow, Accept string
}

// Proxy is the compiled, read-only form of a ProxyConfig, shared by the
// stages of every worker.
type Proxy struct {
	key          *sipcore.Key
	names        [][]byte
	ports        []uint16
	backends     *Backends
	fwdInitial   sipcore.ForwardOptions // with Record-Route
	fwdInDialog  sipcore.ForwardOptions // without
	optionsExtra []byte
	retryExtra   []byte
}

// NewProxy checks cfg and compiles it.
func NewProxy(cfg ProxyConfig) (*Proxy, error) {
	if cfg.Key == nil {
		return nil, errors.New("proxy: Key is required (sipcore.NewKey of [node] secret)")
	}
	if cfg.Backends == nil {
		return nil, errors.New("proxy: Backends is required ([dispatcher] backends)")
	}
	if _, err := netip.ParseAddrPort(cfg.SentBy); err != nil {
		return nil, fmt.Errorf("proxy: SentBy %q must be IP:port (the address backends send responses to): %v", cfg.SentBy, err)
	}
	if len(cfg.Names) == 0 {
		return nil, errors.New("proxy: Names must list at least the appliance's address ([node] addresses)")
	}
	p := &Proxy{key: cfg.Key, backends: cfg.Backends, ports: cfg.Ports}
	if len(p.ports) == 0 {
		p.ports = []uint16{5060}
	}
	for _, n := range cfg.Names {
		p.names = append(p.names, []byte(strings.ToLower(n)))
	}
	if cfg.RetryAfter <= 0 {
		cfg.RetryAfter = 5
	}
	if cfg.Allow == "" {
		cfg.Allow = "INVITE, ACK, CANCEL, BYE, OPTIONS, PRACK, UPDATE, INFO, REFER, NOTIFY, SUBSCRIBE, MESSAGE, REGISTER"
	}
	if cfg.Accept == "" {
		cfg.Accept = "application/sdp"
	}
	p.optionsExtra = []byte("Allow: " + cfg.Allow + "\r\nAccept: " + cfg.Accept + "\r\n")
	p.retryExtra = []byte("Retry-After: " + strconv.Itoa(cfg.RetryAfter) + "\r\n")
	p.fwdInDialog = sipcore.ForwardOptions{Key: cfg.Key, SentBy: []byte(cfg.SentBy), IsLocal: p.isLocal}
	p.fwdInitial = p.fwdInDialog
	if cfg.RecordRoute != "" {
		p.fwdInitial.RecordRoute = []byte(cfg.RecordRoute)
	}
	return p, nil
}

// Stages returns fresh stage instances for one worker, in pipeline order:
// sanity (parse, 416, 420), responses (pop our Via), self (OPTIONS ping,
// 404), route (dispatcher or loose route). Later stages (guard, auth,
// registrar, media) are inserted into this slice.
func (p *Proxy) Stages() []Stage {
	return []Stage{
		&sanityStage{p: p},
		&responseStage{p: p},
		&selfStage{p: p},
		&routeStage{p: p},
	}
}

func (p *Proxy) isName(h []byte) bool {
	for _, n := range p.names {
		if len(n) == len(h) && equalFoldLower(h, n) {
			return true
		}
	}
	return false
}

func equalFoldLower(a, lower []byte) bool {
	for i := range a {
		c := a[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != lower[i] {
			return false
		}
	}
	return true
}

func (p *Proxy) isOurPort(u *sipcore.URI) bool {
	port := uint16(5060)
	if u.HasPort {
		port = u.Port
	}
	for _, q := range p.ports {
		if q == port {
			return true
		}
	}
	return false
}

// isLocal reports whether a Route URI names this appliance (loose-route
// removal, RFC 3261 16.4).
func (p *Proxy) isLocal(buf []byte, u *sipcore.URI) bool {
	if u.Scheme != sipcore.SchemeSIP && u.Scheme != sipcore.SchemeSIPS {
		return false
	}
	return p.isName(buf[u.Host.Off:u.Host.End()]) && p.isOurPort(u)
}

// isSelf reports whether a Request-URI addresses the appliance itself (not
// a user at it).
func (p *Proxy) isSelf(buf []byte, u *sipcore.URI) bool {
	return u.User.Len == 0 && p.isLocal(buf, u)
}

// uriAddr is where a URI with an IP host sends us (RFC 3263 without DNS);
// false for host names, which the hot path does not resolve.
func uriAddr(buf []byte, u *sipcore.URI) (netip.AddrPort, bool) {
	if u.HostKind != sipcore.HostIPv4 && u.HostKind != sipcore.HostIPv6 {
		return netip.AddrPort{}, false
	}
	h := u.Host
	if u.MAddr.Len > 0 {
		h = u.MAddr
	}
	ip, ok := sipcore.ParseIP(buf[h.Off:h.End()])
	if !ok {
		return netip.AddrPort{}, false
	}
	port := uint16(5060)
	if u.HasPort {
		port = u.Port
	}
	return netip.AddrPortFrom(ip, port), true
}

// sanityStage parses and applies RFC 3261 16.3's checks that need no
// routing decision: syntax (ResponseFor), URI scheme (416), Proxy-Require
// (420). Max-Forwards (483) and loops (482) are found by BuildForward.
type sanityStage struct {
	p       *Proxy
	scratch [1024]byte // Unsupported header of a 420, per worker
}

func (s *sanityStage) Name() string { return "sanity" }

func (s *sanityStage) Process(c *Ctx) Verdict {
	m := c.Msg
	if err := c.Parse(); err != nil {
		status, reason := sipcore.ResponseFor(m, err)
		// Without a Via a response has nowhere to go but the source port,
		// which need not be a SIP peer at all: drop instead of reflecting.
		if status == 0 || m.NVia == 0 {
			return c.Drop(DropUnparsable)
		}
		return c.Respond(status, reason, nil)
	}
	if !m.IsRequest {
		return Continue
	}
	// The ACK of a non-2xx response this node generated (a 503, a 407...)
	// ends here: its To-tag is ours, derived again without state.
	if m.Method == sipcore.MethodACK && s.p.key.IsOwnToTag(m) {
		return c.Drop(DropAckToSelf)
	}
	if m.RURI.Scheme == sipcore.SchemeOther {
		return c.Respond(416, "Unsupported URI Scheme", nil)
	}
	if m.ProxyRequire >= 0 {
		if n := s.unsupported(m); n > 0 {
			return c.Respond(420, "Bad Extension", s.scratch[:n])
		}
	}
	return Continue
}

// unsupported writes "Unsupported: <every Proxy-Require option>\r\n" into
// scratch (we support none) and returns its length, 0 when the headers
// list no option. Options that would not fit are left out.
func (s *sanityStage) unsupported(m *sipcore.Msg) int {
	const prefix = "Unsupported: "
	b := s.scratch[:]
	n := copy(b, prefix)
	for i := m.Next(sipcore.HdrProxyRequire, 0); i >= 0; i = m.Next(sipcore.HdrProxyRequire, i+1) {
		v := m.B(m.Headers[i].Value)
		for len(v) > 0 {
			var opt []byte
			if k := indexByte(v, ','); k >= 0 {
				opt, v = v[:k], v[k+1:]
			} else {
				opt, v = v, nil
			}
			opt = trimSpace(opt)
			if len(opt) == 0 {
				continue
			}
			need := len(opt) + 2 + 2 // ", " and the final CRLF
			if n+need > len(b) {
				break
			}
			if n > len(prefix) {
				n += copy(b[n:], ", ")
			}
			n += copy(b[n:], opt)
		}
	}
	if n == len(prefix) {
		return 0
	}
	n += copy(b[n:], "\r\n")
	return n
}

func indexByte(b []byte, c byte) int {
	for i := range b {
		if b[i] == c {
			return i
		}
	}
	return -1
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t') {
		b = b[:len(b)-1]
	}
	return b
}

// responseStage forwards responses statelessly (RFC 3261 16.7, 16.11):
// our Via must be on top; it is removed and the response goes where the
// next Via says.
type responseStage struct{ p *Proxy }

func (s *responseStage) Name() string { return "response" }

func (s *responseStage) Process(c *Ctx) Verdict {
	m := c.Msg
	if m.IsRequest {
		return Continue
	}
	b := c.TxBuf()
	if b == nil {
		return c.Drop(DropNoTxBuffer)
	}
	var hop sipcore.NextHop
	n, err := sipcore.BuildResponseForward(b, m, s.p.key, &hop)
	switch {
	case err == nil:
	case err == sipcore.ErrNotOurVia:
		return c.Drop(DropResponseNotOurs)
	case err == sipcore.ErrNoNextVia:
		return c.Drop(DropResponseNoNextVia)
	default:
		return c.Drop(DropBuildFailed)
	}
	if !hop.Addr.IsValid() {
		return c.Drop(DropUnresolved)
	}
	return c.Send(hop.Addr, n)
}

// selfStage answers requests addressed to the appliance itself: OPTIONS
// gets 200 (the keepalive ping of peers and load balancers), anything else
// 404 (483 when Max-Forwards is spent), ACK is absorbed.
type selfStage struct{ p *Proxy }

func (s *selfStage) Name() string { return "self" }

func (s *selfStage) Process(c *Ctx) Verdict {
	m := c.Msg
	buf := m.Buf()
	if !s.p.isSelf(buf, &m.RURI) {
		return Continue
	}
	routes := m.NRoute
	if routes > 0 && s.p.isLocal(buf, &m.Routes[0].URI) {
		routes--
	}
	if routes > 0 {
		return Continue // a Route to follow
	}
	switch m.Method {
	case sipcore.MethodOPTIONS:
		return c.Respond(200, "OK", s.p.optionsExtra)
	case sipcore.MethodACK:
		return c.Drop(DropAckToSelf)
	}
	if m.MaxForwards == 0 {
		return c.Respond(483, "Too Many Hops", nil)
	}
	return c.Respond(404, "Not Found", nil)
}

// routeStage picks the next hop of a request and forwards it (RFC 3261
// 16.6, 16.11). Requests from outside go to the backend Call-ID hashing
// picks, so every message of a call (ACK and CANCEL included) reaches the
// same backend with no state here. Requests from a backend are in-dialog
// requests towards the caller: they follow the Route set, else the
// Request-URI.
type routeStage struct {
	p   *Proxy
	set *BackendSet
}

func (s *routeStage) Name() string { return "route" }

// StartBatch loads the backend snapshot once per batch, not per packet.
func (s *routeStage) StartBatch(int64, int) { s.set = s.p.backends.Load() }

var _ BatchStarter = (*routeStage)(nil)

func (s *routeStage) Process(c *Ctx) Verdict {
	m := c.Msg
	if !m.IsRequest {
		return c.Drop(DropNoVerdict)
	}
	set := s.set
	if set == nil {
		set = s.p.backends.Load()
		s.set = set
	}
	buf := m.Buf()
	var to netip.AddrPort
	picked := -1
	if set.IsBackend(c.Src.Addr()) {
		u := &m.RURI
		i := 0
		if m.NRoute > 0 && s.p.isLocal(buf, &m.Routes[0].URI) {
			i = 1
		}
		if i < m.NRoute {
			u = &m.Routes[i].URI
		}
		a, ok := uriAddr(buf, u)
		if !ok {
			return c.Drop(DropUnresolved)
		}
		to = a
	} else {
		k := set.Pick(m.B(m.CallID))
		if k < 0 {
			if m.Method == sipcore.MethodACK {
				return c.Drop(DropNoBackend)
			}
			return c.Respond(503, "Service Unavailable (no backend up)", s.p.retryExtra)
		}
		to = set.Backends[k].Addr
		picked = k
	}
	b := c.TxBuf()
	if b == nil {
		return c.Drop(DropNoTxBuffer)
	}
	fo := &s.p.fwdInDialog
	if m.To.Tag.Len == 0 {
		fo = &s.p.fwdInitial
	}
	n, err := sipcore.BuildForward(b, m, fo, c.Src, nil)
	switch {
	case err == nil:
		if picked >= 0 {
			set.Backends[picked].countRequest(c.Worker())
		}
		return c.Send(to, n)
	case err == sipcore.ErrTooManyHops:
		return c.Respond(483, "Too Many Hops", nil)
	case err == sipcore.ErrLoopDetected:
		return c.Respond(482, "Loop Detected", nil)
	}
	return c.Drop(DropBuildFailed)
}
