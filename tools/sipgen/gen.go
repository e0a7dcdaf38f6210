package sipgen

import (
	"container/heap"
	"fmt"
	"net/netip"
	"time"

	"sipedge/afxdp/frame"
	"sipedge/sipcore"
)

// Kind says what a generated frame is.
type Kind uint8

// Frame kinds.
const (
	KindCall      Kind = iota // a caller's request of a call: INVITE, ACK, BYE, CANCEL
	KindRegister              // a caller's REGISTER, first or authenticated retry
	KindOptions               // a caller's OPTIONS keepalive
	KindResponse              // a backend's response to a forwarded request (Responses)
	KindChallenge             // the proxy's 401 to a REGISTER (Challenges)
	KindFlood                 // REGISTER flood / digest brute force
	KindScan                  // scanner sweep (friendly-scanner, sipvicious, ...)
	KindMalformed             // a message sipcore.Parse must refuse
	NumKinds
)

var kindNames = [NumKinds]string{"call", "register", "options", "response", "challenge", "flood", "scan", "malformed"}

func (k Kind) String() string {
	if k < NumKinds {
		return kindNames[k]
	}
	return "unknown"
}

// flowKind indexes the starters; the first six kinds start flows.
const numFlowKinds = 6

var flowKinds = [numFlowKinds]Kind{KindCall, KindRegister, KindOptions, KindFlood, KindScan, KindMalformed}

// window is the part of the run, as fractions of its span, a flow kind's
// starts are spread over: floods and scans come in bursts.
var window = [numFlowKinds][2]float64{{0, 1}, {0, 1}, {0, 1}, {0.4, 0.6}, {0.2, 0.5}, {0, 1}}

// flow is one call, registration or single abuse message in progress. It
// keeps only what regenerates its messages: the random fields are drawn
// anew from seed for every message, so open flows cost little memory.
type flow struct {
	id     uint64 // creation order: breaks timestamp ties deterministically
	kind   Kind
	idx    int
	seed   uint64
	t0     int64 // ns since Start
	step   int
	plan   [8]step
	nplan  int
	toTag  [32]byte
	tagLen int
}

type step struct {
	code int
	at   int64 // ns since t0
}

// Message codes of a flow's plan.
const (
	cInvite = iota
	cR100
	cR180
	cR200Invite
	cAck2xx
	cBye
	cR200Bye
	cCancel
	cR200Cancel
	cR487
	cAck487
	cRegister
	cChallenge
	cRegisterAuth
	cOptions
	cFlood
	cScan
	cMalformed
)

type flowHeap []*flow

func (h flowHeap) Len() int { return len(h) }
func (h flowHeap) Less(i, j int) bool {
	a, b := h[i], h[j]
	ta, tb := a.t0+a.plan[a.step].at, b.t0+b.plan[b.step].at
	if ta != tb {
		return ta < tb
	}
	return a.id < b.id
}
func (h flowHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *flowHeap) Push(x any)   { *h = append(*h, x.(*flow)) }
func (h *flowHeap) Pop() any {
	old := *h
	f := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return f
}

// Generator streams the frames of a Config in timestamp order. Memory is
// bounded by the flows open at once (about CPS x Hold), not by the counts.
type Generator struct {
	cfg    Config
	v6     bool
	span   int64 // ns the starts are spread over
	counts [numFlowKinds]int
	next   [numFlowKinds]int // next flow index to start, per kind
	active flowHeap
	ids    uint64
	frames uint64
	err    error

	fwd      sipcore.ForwardOptions
	proxyKey sipcore.Key
	backKey  sipcore.Key
	nonceKey *sipcore.NonceKey
	proxyMAC [6]byte
	backMAC  [6]byte
	ipid     uint16

	msg, aux, aux2 []byte
	m, m2          sipcore.Msg
	buf            []byte
	kind           Kind
	payloadOff     int
	payloadLen     int
}

// New checks cfg and returns a generator positioned before the first frame.
func New(cfg Config) (*Generator, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	g := &Generator{cfg: cfg, v6: cfg.Proxy.Addr().Unmap().Is6()}
	g.counts = [numFlowKinds]int{cfg.Calls, cfg.Registers, cfg.Options, cfg.Flood, cfg.Scan, cfg.Malformed}
	n := cfg.Calls
	if n == 0 {
		n = cfg.Registers + cfg.Options + cfg.Flood + cfg.Scan + cfg.Malformed
	}
	g.span = max(int64(float64(n)/cfg.CPS*1e9), int64(time.Millisecond))
	g.proxyKey = sipcore.NewKey([]byte(cfg.Secret))
	g.backKey = sipcore.NewKey([]byte(fmt.Sprintf("sipgen backend %d", cfg.Seed)))
	g.nonceKey = sipcore.NewNonceKey([]byte(cfg.Secret))
	sentBy := hostPort(cfg.Proxy)
	proxyHost := hostOf(cfg.Proxy.Addr())
	g.fwd = sipcore.ForwardOptions{Key: &g.proxyKey, SentBy: []byte(sentBy)}
	if cfg.RecordRoute {
		g.fwd.RecordRoute = []byte("sip:" + sentBy + ";lr")
		g.fwd.IsLocal = func(buf []byte, u *sipcore.URI) bool {
			return string(buf[u.Host.Off:u.Host.End()]) == proxyHost
		}
	}
	g.proxyMAC = macFor(cfg.Proxy.Addr())
	g.backMAC = macFor(cfg.Backend.Addr())
	g.buf = make([]byte, frame.Headroom(true, false)+frame.MaxUDPPayload)
	return g, nil
}

// Config returns the generator's configuration.
func (g *Generator) Config() Config { return g.cfg }

// Err is the error that stopped the generator early, if any.
func (g *Generator) Err() error { return g.err }

// Kind is the kind of the frame the last Next returned.
func (g *Generator) Kind() Kind { return g.kind }

// Payload is the UDP payload (the SIP message) of the last frame, aliasing it.
func (g *Generator) Payload() []byte { return g.buf[g.payloadOff : g.payloadOff+g.payloadLen] }

// Frames is how many frames Next returned.
func (g *Generator) Frames() uint64 { return g.frames }

// startAt is when flow i of flow kind k starts (ns since Start): spread
// evenly over the kind's window, with a seeded jitter that keeps the order.
func (g *Generator) startAt(k, i int) int64 {
	w := window[k]
	lo := float64(g.span) * w[0]
	width := float64(g.span) * (w[1] - w[0])
	u := float64(mix64(uint64(g.cfg.Seed)+uint64(k)<<56, uint64(i))>>11) / (1 << 53)
	return int64(lo + width*(float64(i)+u)/float64(g.counts[k]))
}

// Next returns the next Ethernet frame and its timestamp. The frame is
// valid until the following call. ok is false at the end, or on an error
// (see Err).
func (g *Generator) Next() (fr []byte, ts time.Time, ok bool) {
	if g.err != nil || (g.cfg.MaxFrames > 0 && g.frames >= g.cfg.MaxFrames) {
		return nil, time.Time{}, false
	}
	// The earliest of: the next step of an open flow, the next flow start.
	bestK, bestT := -1, int64(0)
	for k := 0; k < numFlowKinds; k++ {
		if g.next[k] < g.counts[k] {
			t := g.startAt(k, g.next[k])
			if bestK < 0 || t < bestT {
				bestK, bestT = k, t
			}
		}
	}
	var f *flow
	if len(g.active) > 0 {
		top := g.active[0]
		if bestK < 0 || top.t0+top.plan[top.step].at <= bestT {
			f = top
		}
	}
	if f == nil {
		if bestK < 0 {
			return nil, time.Time{}, false
		}
		i := g.next[bestK]
		g.next[bestK]++
		f = g.newFlow(flowKinds[bestK], i, bestT)
		heap.Push(&g.active, f)
	}
	at := f.t0 + f.plan[f.step].at
	n, err := g.emit(f, f.plan[f.step].code, at)
	if err != nil {
		g.err = fmt.Errorf("sipgen: %s flow %d step %d: %w", f.kind, f.idx, f.step, err)
		return nil, time.Time{}, false
	}
	f.step++
	if f.step == f.nplan {
		heap.Remove(&g.active, indexOfFlow(g.active, f))
	} else {
		heap.Fix(&g.active, indexOfFlow(g.active, f))
	}
	g.frames++
	return g.buf[:n], g.cfg.Start.Add(time.Duration(at)), true
}

// indexOfFlow finds f in the heap; f is almost always the top.
func indexOfFlow(h flowHeap, f *flow) int {
	if h[0] == f {
		return 0
	}
	for i := range h {
		if h[i] == f {
			return i
		}
	}
	return -1
}

// newFlow plans a flow: the message sequence and its offsets.
func (g *Generator) newFlow(k Kind, idx int, t0 int64) *flow {
	g.ids++
	f := &flow{id: g.ids, kind: k, idx: idx, t0: t0,
		seed: mix64(uint64(g.cfg.Seed)^uint64(k)<<48, uint64(idx))}
	r := rng{f.seed ^ 0x9e3779b97f4a7c15}
	add := func(code int, at int64, on bool) {
		if on {
			f.plan[f.nplan] = step{code, at}
			f.nplan++
		}
	}
	ms := int64(time.Millisecond)
	resp := g.cfg.Responses
	switch k {
	case KindCall:
		pdd := (20 + r.intn(280)) * ms
		ring := (500 + r.intn(3500)) * ms
		hold := int64(float64(g.cfg.Hold) * (0.5 + r.float()))
		cancel := r.intn(100) < int64(g.cfg.CancelPercent)
		add(cInvite, 0, true)
		add(cR100, 3*ms, resp)
		add(cR180, pdd, resp)
		if cancel {
			add(cCancel, pdd+ring, true)
			add(cR200Cancel, pdd+ring+3*ms, resp)
			add(cR487, pdd+ring+4*ms, resp)
			add(cAck487, pdd+ring+20*ms, true)
		} else {
			add(cR200Invite, pdd+ring, resp)
			add(cAck2xx, pdd+ring+15*ms, true)
			add(cBye, pdd+ring+15*ms+hold, true)
			add(cR200Bye, pdd+ring+18*ms+hold, resp)
		}
	case KindRegister:
		add(cRegister, 0, true)
		add(cChallenge, ms, g.cfg.Challenges)
		add(cRegisterAuth, (30+r.intn(90))*ms, true)
	case KindOptions:
		add(cOptions, 0, true)
	case KindFlood:
		add(cFlood, 0, true)
	case KindScan:
		add(cScan, 0, true)
	case KindMalformed:
		add(cMalformed, 0, true)
	}
	return f
}

// emit writes message code of flow f, at time at, as a frame into g.buf.
func (g *Generator) emit(f *flow, code int, at int64) (int, error) {
	var src, dst netip.AddrPort
	var kind Kind
	var err error
	g.msg = g.msg[:0]
	switch code {
	case cInvite, cAck2xx, cBye, cCancel, cAck487:
		kind = KindCall
		src, dst, err = g.callRequest(f, code)
	case cR100, cR180, cR200Invite, cR200Bye, cR200Cancel, cR487:
		kind = KindResponse
		src, dst, err = g.backendResponse(f, code)
	case cRegister, cRegisterAuth:
		kind = KindRegister
		src, dst = g.register(f, code, at)
	case cChallenge:
		kind = KindChallenge
		src, dst, err = g.challenge(f, at)
	case cOptions:
		kind = KindOptions
		src, dst = g.options(f)
	case cFlood:
		kind = KindFlood
		src, dst = g.flood(f)
	case cScan:
		kind = KindScan
		src, dst = g.scan(f)
	case cMalformed:
		kind = KindMalformed
		src, dst = g.malformed(f)
	}
	if err != nil {
		return 0, err
	}
	g.kind = kind
	h := frame.Header{Src: src, Dst: dst, ID: g.ipid}
	g.ipid++
	h.SrcMAC, h.DstMAC = macFor(src.Addr()), g.proxyMAC
	if dst.Addr() != g.cfg.Proxy.Addr() {
		h.DstMAC = macFor(dst.Addr())
	}
	hr := frame.Headroom(g.v6, false)
	if len(g.msg) > frame.MaxUDPPayload {
		return 0, frame.ErrPayloadTooBig
	}
	copy(g.buf[hr:], g.msg)
	n, err := frame.Encode(g.buf, &h, len(g.msg))
	if err != nil {
		return 0, err
	}
	g.payloadOff, g.payloadLen = hr, len(g.msg)
	return n, nil
}

// addrAdd returns a + n (IPv4: within 32 bits; IPv6: on the low 64 bits).
func addrAdd(a netip.Addr, n uint64) netip.Addr {
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
		v += uint32(n)
		return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	b := a.As16()
	var lo uint64
	for i := 8; i < 16; i++ {
		lo = lo<<8 | uint64(b[i])
	}
	lo += n
	for i := 15; i >= 8; i-- {
		b[i] = byte(lo)
		lo >>= 8
	}
	return netip.AddrFrom16(b)
}

// macFor is a locally administered MAC derived from an address, so that
// every host of the capture has its own, stable one.
func macFor(a netip.Addr) [6]byte {
	b := a.Unmap().AsSlice()
	n := len(b)
	return [6]byte{0x02, 0x00, b[n-4], b[n-3], b[n-2], b[n-1]}
}

// rng is splitmix64: tiny, fast and fully determined by its state.
type rng struct{ s uint64 }

func (r *rng) u64() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

func (r *rng) intn(n int64) int64 { return int64(r.u64() % uint64(n)) }
func (r *rng) float() float64     { return float64(r.u64()>>11) / (1 << 53) }

// mix64 hashes two words into one (a splitmix64 step over their mix).
func mix64(a, b uint64) uint64 {
	r := rng{a ^ b*0xd1b54a32d192ed03}
	return r.u64()
}
