package route

import (
	"errors"
	"fmt"
	"net/netip"

	"sipedge/pipeline"
	"sipedge/pipeline/node"
	"sipedge/sipcore"
)

// Def declares the stage.
var Def = pipeline.StageDef{
	Name:    "route",
	Doc:     "requests: a backend by Call-ID hash (dispatcher), in-dialog to the backend their next hop names (so a drained backend keeps its dialogs); from a backend, in-dialog to the caller its signed Record-Route names, initial only to allowed destinations; 503 when no backend is up",
	Section: "[dispatcher]",
	Counters: []pipeline.CounterDef{
		{Name: "sipedge_route_refused_total", Help: "Requests from a backend's address the dispatcher refused (403, ACKs dropped): in-dialog without this node's signed Record-Route token, with a token that does not verify, or initial to a destination [dispatcher] backend_destinations does not allow.",
			Label: "reason", Values: refusedNames[:]},
		{Name: "sipedge_route_via_corrected_total", Help: "Forwarded requests whose top Via carried a received or rport naming another address than the one observed: replaced by the observation, so responses cannot be reflected to a third party."},
		{Name: "sipedge_route_dialog_target_total", Help: "In-dialog requests from the caller side sent to the backend their next hop (Route or Request-URI) names, not by Call-ID hash."},
	},
}

// Refusal reasons, the slots of sipedge_route_refused_total.
const (
	refusedNoToken = iota
	refusedBadToken
	refusedDestination
	numRefused
	cViaCorrected = numRefused // the next counter slot
	cDialogTarget = cViaCorrected + 1
)

var refusedNames = [numRefused]string{"no-token", "bad-token", "destination"}

// Config configures the stage ([dispatcher] in config.toml).
type Config struct {
	Node *node.Node
	// SentBy is our Via sent-by, "192.0.2.1:5060" or "[2001:db8::1]:5060".
	SentBy string
	// RecordRoute is the URI we record-route initial requests with
	// ("sip:192.0.2.1:5060;lr"); empty adds none.
	RecordRoute string
	// Backends is the dispatcher's backend list (shared by all workers).
	Backends *pipeline.Backends
	// RetryAfter is the Retry-After (seconds) of 503s when no backend is up.
	RetryAfter int
	// BackendDestinations are where initial requests from backends may go
	// (their Request-URI's address); none by default: such requests get
	// 403, so a datagram with a backend's (spoofed) source cannot use this
	// node as an open relay.
	BackendDestinations []netip.Prefix
}

// Route is the compiled Config, shared by every worker's stage.
type Route struct {
	n           *node.Node
	backends    *pipeline.Backends
	fwdInitial  sipcore.ForwardOptions // with Record-Route
	fwdInDialog sipcore.ForwardOptions // without
	retryExtra  []byte
	dests       []netip.Prefix
}

// New checks cfg and compiles it.
func New(cfg Config) (*Route, error) {
	if cfg.Node == nil {
		return nil, errors.New("route: Node is required")
	}
	if cfg.Backends == nil {
		return nil, errors.New("route: Backends is required ([dispatcher] backends)")
	}
	if _, err := netip.ParseAddrPort(cfg.SentBy); err != nil {
		return nil, fmt.Errorf("route: SentBy %q must be IP:port (the address backends send responses to): %v", cfg.SentBy, err)
	}
	r := &Route{n: cfg.Node, backends: cfg.Backends, retryExtra: pipeline.RetryAfter(cfg.RetryAfter)}
	// The dispatcher's Call-ID hash is keyed by the cluster secret: the
	// same pick on every node, none that a flood's author can predict.
	cfg.Backends.SetKey(cfg.Node.Key)
	for _, p := range cfg.BackendDestinations {
		if !p.IsValid() {
			return nil, fmt.Errorf("route: backend destination %v is not a valid prefix: give a CIDR such as 198.51.100.0/24", p)
		}
		if p.Addr().Is4In6() {
			return nil, fmt.Errorf("route: backend destination %v is IPv4-mapped: give it as IPv4, such as 198.51.100.0/24", p)
		}
		r.dests = append(r.dests, p.Masked())
	}
	r.fwdInDialog = sipcore.ForwardOptions{Key: cfg.Node.Key, SentBy: []byte(cfg.SentBy), IsLocal: cfg.Node.IsLocal, MarkLateOffer: cfg.Node.MarkLateOffer}
	r.fwdInitial = r.fwdInDialog
	if cfg.RecordRoute != "" {
		r.fwdInitial.RecordRoute = []byte(cfg.RecordRoute)
		r.fwdInitial.RouteToken = true
	}
	return r, nil
}

// Def implements pipeline.StageMaker.
func (*Route) Def() *pipeline.StageDef { return &Def }

// NewStage implements pipeline.StageMaker.
func (r *Route) NewStage(env *pipeline.Env) (pipeline.Stage, error) {
	return &stage{Route: r, cnt: env.Counters}, nil
}

type stage struct {
	*Route
	set *pipeline.BackendSet
	cnt pipeline.Counters
}

func (r *Route) destAllowed(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range r.dests {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// refuse answers 403 to a request from a backend's address that this node
// will not relay (an ACK, which cannot be answered, is dropped), counted.
func (s *stage) refuse(c *pipeline.Ctx, why int, reason string) pipeline.Verdict {
	s.cnt.Inc(why)
	if c.Msg.Method == sipcore.MethodACK {
		return c.Drop(pipeline.DropPolicy)
	}
	return c.Respond(403, reason, nil)
}

// fromBackend is where a request from a backend goes. In-dialog: only to
// the caller address bound by this node's Record-Route token on the top
// Route (the dialog's route set starts with our Record-Route). Initial:
// the Request-URI's address, only when [dispatcher] backend_destinations
// allows it.
func (s *stage) fromBackend(c *pipeline.Ctx) (netip.AddrPort, pipeline.Verdict, bool) {
	m := c.Msg
	buf := m.Buf()
	if m.To.Tag.Len > 0 {
		if m.NRoute == 0 || !s.n.IsLocal(buf, &m.Routes[0].URI) {
			return netip.AddrPort{}, s.refuse(c, refusedNoToken, "Forbidden (in-dialog request without this node's Record-Route)"), false
		}
		a, res := s.n.Key.RouteTarget(m, &m.Routes[0].URI)
		switch res {
		case sipcore.RouteTokenMissing:
			return netip.AddrPort{}, s.refuse(c, refusedNoToken, "Forbidden (in-dialog request without this node's Record-Route)"), false
		case sipcore.RouteTokenBad:
			return netip.AddrPort{}, s.refuse(c, refusedBadToken, "Forbidden (Record-Route token not valid for this dialog)"), false
		}
		return a, 0, true
	}
	u := &m.RURI
	if m.NRoute > 0 && !s.n.IsLocal(buf, &m.Routes[0].URI) {
		u = &m.Routes[0].URI
	}
	a, ok := uriAddr(buf, u)
	if !ok {
		return netip.AddrPort{}, c.Drop(pipeline.DropUnresolved), false
	}
	if !s.destAllowed(a.Addr()) {
		return netip.AddrPort{}, s.refuse(c, refusedDestination, "Forbidden (destination not allowed for requests from backends)"), false
	}
	return a, 0, true
}

// dialogBackend is the backend an in-dialog request from the caller side
// names as its next hop (RFC 3261 16.12: the Route after ours, else the
// Request-URI, which is the backend's Contact), when that is a backend
// of the set and up; -1 otherwise, and the Call-ID hash decides. A
// backend at weight 0 (lingering after it left the DNS) gets no new calls
// from the hash, but keeps receiving the requests of the dialogs it set
// up: the hash alone would send them to the backend that wins the Call-ID
// now, which does not know them.
func dialogBackend(m *sipcore.Msg, set *pipeline.BackendSet, isLocal func([]byte, *sipcore.URI) bool) int {
	if m.To.Tag.Len == 0 {
		return -1
	}
	buf := m.Buf()
	u := &m.RURI
	switch {
	case m.NRoute > 0 && !isLocal(buf, &m.Routes[0].URI):
		u = &m.Routes[0].URI
	case m.NRoute > 1:
		u = &m.Routes[1].URI
	}
	a, ok := uriAddr(buf, u)
	if !ok {
		return -1
	}
	a = netip.AddrPortFrom(a.Addr().Unmap(), a.Port())
	for i := range set.Backends {
		if b := &set.Backends[i]; b.Addr == a {
			if b.Up {
				return i
			}
			return -1
		}
	}
	return -1
}

// StartBatch loads the backend snapshot once per batch, not per packet.
func (s *stage) StartBatch(int64, int) { s.set = s.backends.Load() }

var _ pipeline.BatchStarter = (*stage)(nil)

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

func (s *stage) Process(c *pipeline.Ctx) pipeline.Verdict {
	m := c.Msg
	if !m.IsRequest {
		return c.Drop(pipeline.DropNoVerdict)
	}
	set := s.set
	if set == nil {
		set = s.backends.Load()
		s.set = set
	}
	var to netip.AddrPort
	picked := -1
	if set.IsBackend(c.Src) {
		a, v, ok := s.fromBackend(c)
		if !ok {
			return v
		}
		to = a
	} else if k := dialogBackend(m, set, s.n.IsLocal); k >= 0 {
		to, picked = set.Backends[k].Addr, k
		s.cnt.Inc(cDialogTarget)
	} else {
		k := set.Pick(m.B(m.CallID))
		if k < 0 {
			if m.Method == sipcore.MethodACK {
				return c.Drop(pipeline.DropNoBackend)
			}
			return c.Respond(503, "Service Unavailable (no backend up)", s.retryExtra)
		}
		to = set.Backends[k].Addr
		picked = k
	}
	b := c.TxBuf()
	if b == nil {
		return c.Drop(pipeline.DropNoTxBuffer)
	}
	fo := &s.fwdInDialog
	if m.To.Tag.Len == 0 {
		fo = &s.fwdInitial
	}
	if sipcore.ViaClaimsOther(m, c.Src) {
		s.cnt.Inc(cViaCorrected)
	}
	n, err := sipcore.BuildForward(b, m, fo, c.Src, nil)
	switch {
	case err == nil:
		if picked >= 0 {
			set.Backends[picked].CountRequest(c.Worker())
		}
		return c.Send(to, n)
	case err == sipcore.ErrTooManyHops:
		return c.Respond(483, "Too Many Hops", nil)
	case err == sipcore.ErrLoopDetected:
		return c.Respond(482, "Loop Detected", nil)
	}
	return c.Drop(pipeline.DropBuildFailed)
}
