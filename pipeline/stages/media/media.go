package media

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/stages/media/ng"
	"sipedge/pipeline/stages/mediaanswer"
	"sipedge/sipcore"
)

// Fallback reasons: why a message was not anchored on a relay. They
// label the stages' fallback counters and the module's error counters.
var fallbackWhy = mediaanswer.FallbackReasons

const (
	whyRelayError = iota
	whyTimeout
	whyNoRelay
	whyJobsFull
	whyTooLarge
	whyUnknownCall
)

// Def declares the request side: offers and deletes.
var Def = pipeline.StageDef{
	Name:    "media",
	Doc:     "requests: SDP offers (INVITE, UPDATE, PRACK) and a late offer's answer (ACK) parked while a media relay anchors them, the relay's SDP forwarded; BYE and CANCEL, and initial INVITEs a later stage refuses, delete the call on the relay",
	Section: "[media]",
	Parks:   true,
	Counters: []pipeline.CounterDef{
		{Name: "sipedge_media_offers_parked_total", Help: "Requests with SDP parked for a relay: offers, and ACKs answering a late offer."},
		{Name: "sipedge_media_offers_rewritten_total", Help: "Requests forwarded with the relay's SDP."},
		{Name: "sipedge_media_request_deletes_total", Help: "Deletes sent to a relay for BYE and CANCEL."},
		{Name: "sipedge_media_offers_not_anchored_total", Help: "Requests with SDP whose source is not anchored (anchor = \"sources\")."},
		{Name: "sipedge_media_offer_fallbacks_total", Help: "Offers the relay did not anchor, by reason; the request got the fallback (503 or unchanged SDP).", Label: "reason", Values: fallbackWhy},
		{Name: "sipedge_media_refused_deletes_total", Help: "Deletes sent to a relay for initial INVITEs a later stage answered with a failure (location's 404, 480, 503; route's 503) after the offer was anchored."},
	},
}

// Config configures both stages of [media].
type Config struct {
	// Key recognises this node's branches in responses.
	Key *sipcore.Key
	// Relays are the rtpengine ng addresses and weights. Empty is allowed
	// (relays named in the DNS that do not resolve yet): offers get the
	// fallback until ReplaceRelays brings one.
	Relays []pipeline.BackendSpec
	// Sources limits anchoring to calls with a party in these networks:
	// an offer from one of them or whose Request-URI host is in one, an
	// answer from one of them or going back to one; empty anchors every
	// call.
	Sources []netip.Prefix
	// Flags are the ng options passed with every offer and answer.
	Flags Flags
	// Deadline is how long a message waits for the relay before its
	// fallback; Retry is the ng retransmission interval within it.
	Deadline, Retry time.Duration
	// PassOnFailure forwards the SDP unchanged when the relay fails;
	// otherwise a request is answered 503 and a response dropped (its
	// sender retransmits it).
	PassOnFailure bool
	// RetryAfter is the 503's Retry-After, in seconds.
	RetryAfter int
	// Helpers is the number of ng clients (goroutines) per worker and
	// stage; Jobs the messages each worker's stage can have at a relay.
	Helpers, Jobs int
	// DeleteDelay, when >= 0, is sent with deletes (rtpengine's
	// delete-delay, seconds); < 0 leaves the relay's default.
	DeleteDelay int
	// Ping checks the relays.
	Ping Ping
	// Local is the address the ng sockets bind (the zero Addr: any).
	Local netip.Addr
	// Logf logs relay state changes (nil: none).
	Logf func(msg string, args ...any)
}

// Flags are the options operators pass to the relay with offers and
// answers (rtpengine's ng keys).
type Flags struct {
	// Replace: "origin", "session-connection".
	Replace []string
	// ICE: "" (relay default), "remove", "force".
	ICE string
	// TransportProtocol: "" (unchanged), "RTP/AVP", "RTP/SAVP", ...
	TransportProtocol string
	// Direction: the relay's two interface names (caller side first), or none.
	Direction []string
	// ReceivedFrom sends the address the message came from, as this node
	// observed it (never what the message claims).
	ReceivedFrom bool
	// Other flags, verbatim ("trust-address", "SIP-source-address",
	// "port-latching", ...).
	Other []string
}

// Ping is how relays are checked.
type Ping struct {
	Interval, Timeout  time.Duration
	DownAfter, UpAfter int
}

// Media is the compiled Config: the relay set, the ng options, and both
// stages' makers (Media itself for "media", Answer for "mediaanswer").
type Media struct {
	cfg    Config
	relays *Relays
	flags  []byte // the encoded Flags: dictionary entries appended to every offer and answer
	retry  []byte
	stats  *Stats

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New checks cfg and makes the relay set.
func New(cfg Config) (*Media, error) {
	if cfg.Key == nil {
		return nil, errors.New("media: Key is required")
	}
	if cfg.Deadline <= 0 {
		cfg.Deadline = 200 * time.Millisecond
	}
	if cfg.Retry <= 0 || cfg.Retry > cfg.Deadline {
		cfg.Retry = cfg.Deadline / 3
	}
	if cfg.Helpers <= 0 {
		cfg.Helpers = 4
	}
	if cfg.Jobs <= 0 {
		cfg.Jobs = 256
	}
	if cfg.Ping.Interval <= 0 {
		cfg.Ping.Interval = time.Second
	}
	if cfg.Ping.Timeout <= 0 || cfg.Ping.Timeout > cfg.Ping.Interval {
		cfg.Ping.Timeout = cfg.Ping.Interval / 2
	}
	cfg.Ping.DownAfter = max(cfg.Ping.DownAfter, 1)
	cfg.Ping.UpAfter = max(cfg.Ping.UpAfter, 1)
	if cfg.Logf == nil {
		cfg.Logf = func(string, ...any) {}
	}
	switch cfg.Flags.ICE {
	case "", "remove", "force":
	default:
		return nil, fmt.Errorf("media: ICE %q: want \"\", \"remove\" or \"force\"", cfg.Flags.ICE)
	}
	m := &Media{cfg: cfg, retry: pipeline.RetryAfter(cfg.RetryAfter), stats: newStats()}
	r, err := newRelays(cfg.Relays, m.stats)
	if err != nil {
		return nil, err
	}
	m.relays = r
	m.flags = encodeFlags(&cfg.Flags)
	m.ctx, m.cancel = context.WithCancel(context.Background())
	return m, nil
}

// encodeFlags encodes the operator's options once, as dictionary entries.
func encodeFlags(f *Flags) []byte {
	var e ng.Enc
	if len(f.Replace) > 0 {
		e.KL("replace", f.Replace)
	}
	if f.ICE != "" {
		e.KS("ICE", f.ICE)
	}
	if f.TransportProtocol != "" {
		e.KS("transport-protocol", f.TransportProtocol)
	}
	if len(f.Direction) > 0 {
		e.KL("direction", f.Direction)
	}
	if len(f.Other) > 0 {
		e.KL("flags", f.Other)
	}
	return e.B
}

// Def implements pipeline.StageMaker for the request side.
func (*Media) Def() *pipeline.StageDef { return &Def }

// NewStage implements pipeline.StageMaker: the request side of one worker.
func (m *Media) NewStage(env *pipeline.Env) (pipeline.Stage, error) { return m.newStage(env, false) }

// Answer is the maker of the response side ("mediaanswer").
func (m *Media) Answer() pipeline.StageMaker { return answerMaker{m} }

type answerMaker struct{ m *Media }

func (answerMaker) Def() *pipeline.StageDef { return &mediaanswer.Def }

func (a answerMaker) NewStage(env *pipeline.Env) (pipeline.Stage, error) {
	return a.m.newStage(env, true)
}

// Relays is the relay set.
func (m *Media) Relays() *Relays { return m.relays }

// ReplaceRelays makes specs the relay set (relays named in the DNS, on a
// refresh); see Relays.Replace.
func (m *Media) ReplaceRelays(specs []pipeline.BackendSpec) error {
	return m.relays.Replace(specs, m.cfg.Logf)
}

// Stats are the helpers' counts (requests, errors, latency).
func (m *Media) Stats() *Stats { return m.stats }

// Run pings the relays until ctx ends, marking them down and up.
func (m *Media) Run(ctx context.Context) error {
	return m.relays.run(ctx, m.cfg.Ping, m.cfg.Local, m.cfg.Logf)
}

// Close stops the ng helpers. Stop the workers first.
func (m *Media) Close() {
	m.cancel()
	m.wg.Wait()
}

// anchorsURI reports whether the request goes to an anchored network
// (its Request-URI host is an address in Sources).
func (m *Media) anchorsURI(msg *sipcore.Msg) bool {
	if len(m.cfg.Sources) == 0 {
		return true
	}
	u := &msg.RURI
	if u.HostKind != sipcore.HostIPv4 && u.HostKind != sipcore.HostIPv6 {
		return false
	}
	a, ok := sipcore.ParseIP(msg.B(u.Host))
	return ok && m.anchors(a)
}

// anchors reports whether a call to or from a is anchored.
func (m *Media) anchors(a netip.Addr) bool {
	if len(m.cfg.Sources) == 0 {
		return true
	}
	a = a.Unmap()
	for _, p := range m.cfg.Sources {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
