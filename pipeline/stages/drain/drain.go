package drain

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"

	"sipedge/pipeline"
	"sipedge/sipcore"
)

// Def declares the stage.
var Def = pipeline.StageDef{
	Name:    "drain",
	Doc:     "while the node drains: new INVITEs get 503 with Retry-After (or 302/305 to a peer); calls under way flow on",
	Section: "[drain]",
	Counters: []pipeline.CounterDef{
		{Name: "sipedge_drain_refused_total", Help: "New INVITEs refused because the node was draining."},
		{Name: "sipedge_drain_in_call_total", Help: "Messages of calls under way (responses, in-dialog requests, CANCEL) passed while the node was draining."},
	},
}

const (
	cRefused = iota
	cInCall
)

// Config configures the stage ([drain] in config.toml).
type Config struct {
	// State is the switch and the activity clocks, shared with the
	// daemon.
	State *State
	// Status is the answer to a new INVITE while draining: 503 (with
	// RetryAfter), or 302 Moved Temporarily / 305 Use Proxy to Peer.
	Status int
	// Peer is the SIP URI of the node to send callers to (302, 305).
	Peer string
	// RetryAfter is the Retry-After of the 503, in seconds (5 when 0).
	RetryAfter int
}

// Drain is the compiled Config, shared by every worker's stage.
type Drain struct {
	st     *State
	status int
	reason string
	extra  []byte
}

// New checks cfg and compiles the answer.
func New(cfg Config) (*Drain, error) {
	if cfg.State == nil {
		return nil, errors.New("drain: State is required")
	}
	d := &Drain{st: cfg.State, status: cfg.Status}
	switch cfg.Status {
	case 503:
		d.reason, d.extra = "Service Unavailable (draining)", pipeline.RetryAfter(cfg.RetryAfter)
	case 302, 305:
		if !strings.HasPrefix(cfg.Peer, "sip:") || strings.ContainsAny(cfg.Peer, "<>\r\n ") {
			return nil, fmt.Errorf("drain: peer %q: a %d needs the peer's SIP URI, such as sip:192.0.2.7:5060", cfg.Peer, cfg.Status)
		}
		d.reason = "Moved Temporarily"
		if cfg.Status == 305 {
			d.reason = "Use Proxy"
		}
		d.extra = []byte("Contact: <" + cfg.Peer + ">\r\n")
	default:
		return nil, fmt.Errorf("drain: answer %d: want 503, 302 or 305", cfg.Status)
	}
	return d, nil
}

// Def implements pipeline.StageMaker.
func (*Drain) Def() *pipeline.StageDef { return &Def }

// NewStage implements pipeline.StageMaker.
func (d *Drain) NewStage(env *pipeline.Env) (pipeline.Stage, error) {
	return &stage{Drain: d, cnt: env.Counters, clock: d.st.clock(env.Worker)}, nil
}

type stage struct {
	*Drain
	cnt      pipeline.Counters
	clock    *atomic.Int64
	draining bool
	noted    int64 // the last time stored in clock (per-worker copy)
}

// StartBatch reads the switch once per batch: no shared atomic per message.
func (s *stage) StartBatch(int64, int) { s.draining = s.st.Draining() }

var _ pipeline.BatchStarter = (*stage)(nil)

// noteGranularity bounds how often a worker stores its activity clock:
// idleness is judged in hundreds of milliseconds, a store per message
// would buy nothing.
const noteGranularity = 1_000_000 // 1ms

func (s *stage) Process(c *pipeline.Ctx) pipeline.Verdict {
	m := c.Msg
	newCall := m.IsRequest && m.Method == sipcore.MethodINVITE && m.To.Tag.Len == 0
	if newCall && s.draining {
		s.cnt.Inc(cRefused)
		return c.Respond(s.status, s.reason, s.extra)
	}
	// A call's traffic: its setup, responses, requests inside its dialog,
	// CANCEL. Keepalives and registrations are not calls: they do not keep
	// a draining node busy.
	if newCall || !m.IsRequest || m.To.Tag.Len > 0 || m.Method == sipcore.MethodCANCEL {
		if s.draining {
			s.cnt.Inc(cInCall)
		}
		if c.Now-s.noted >= noteGranularity {
			s.noted = c.Now
			s.clock.Store(c.Now)
		}
	}
	return pipeline.Continue
}
