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
	Doc:     "requests: a backend by Call-ID hash (dispatcher), or the Route set back to the caller; 503 when no backend is up",
	Section: "[dispatcher]",
}

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
}

// Route is the compiled Config, shared by every worker's stage.
type Route struct {
	n           *node.Node
	backends    *pipeline.Backends
	fwdInitial  sipcore.ForwardOptions // with Record-Route
	fwdInDialog sipcore.ForwardOptions // without
	retryExtra  []byte
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
	r.fwdInDialog = sipcore.ForwardOptions{Key: cfg.Node.Key, SentBy: []byte(cfg.SentBy), IsLocal: cfg.Node.IsLocal}
	r.fwdInitial = r.fwdInDialog
	if cfg.RecordRoute != "" {
		r.fwdInitial.RecordRoute = []byte(cfg.RecordRoute)
	}
	return r, nil
}

// Def implements pipeline.StageMaker.
func (*Route) Def() *pipeline.StageDef { return &Def }

// NewStage implements pipeline.StageMaker.
func (r *Route) NewStage(*pipeline.Env) (pipeline.Stage, error) { return &stage{Route: r}, nil }

type stage struct {
	*Route
	set *pipeline.BackendSet
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
	buf := m.Buf()
	var to netip.AddrPort
	picked := -1
	if set.IsBackend(c.Src.Addr()) {
		u := &m.RURI
		i := 0
		if m.NRoute > 0 && s.n.IsLocal(buf, &m.Routes[0].URI) {
			i = 1
		}
		if i < m.NRoute {
			u = &m.Routes[i].URI
		}
		a, ok := uriAddr(buf, u)
		if !ok {
			return c.Drop(pipeline.DropUnresolved)
		}
		to = a
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
