package pipeline

import (
	"net/netip"
	"strconv"
	"time"

	"sipedge/pipeline/port"
	"sipedge/sipcore"
)

// Ctx is the message a stage works on and the way it answers. One Ctx per
// worker is reused for every message: stages must not keep it.
type Ctx struct {
	// Buf holds the datagram: the received payload, or the park slot's copy
	// on resume. It is writable (the parser unfolds headers in place).
	Buf []byte
	// Src is where the message came from, Dst the local address it reached.
	Src, Dst netip.AddrPort
	// HW is the sender's link-layer address, when the port has one.
	HW [6]byte
	// Msg is the parsed message once a stage called Parse (the sanity
	// stage, first); Parsed says it parsed without error.
	Msg    *sipcore.Msg
	Parsed bool
	// Answer is the helper's answer when the message resumes after a Park
	// (in Resume), nil otherwise.
	Answer *Answer
	// Now is the loop's clock reading (ns, monotonic), taken once per batch.
	Now int64
	// Truncated says Buf is only the start of a longer datagram (the
	// port's buffer was smaller): answer 513 or drop, never process it.
	Truncated bool

	w        *Worker
	tried    bool // Parse ran on this message: Msg describes Buf
	out      port.Packet
	hasOut   bool // out holds a buffer from the port
	outReady bool // out is built and addressed
	reason   DropReason
	own      int // the stage's own drop reason + 1 (DropOwn), 0 for none
	parkRef  HelperRef
	parkKey  []byte
	parkWait time.Duration
}

func (c *Ctx) reset(buf []byte, src, dst netip.AddrPort, hw [6]byte) {
	c.Buf, c.Src, c.Dst, c.HW = buf, src, dst, hw
	c.Parsed, c.tried, c.Answer, c.Truncated = false, false, nil, false
	c.outReady, c.reason, c.own, c.parkKey = false, DropNone, 0, nil
}

// Parse parses Buf into Msg (sipcore.Parse) and records the outcome in
// Parsed. After an error Msg holds what was parsed before it, which is what
// sipcore.ResponseFor and Respond need to answer it.
func (c *Ctx) Parse() error {
	err := sipcore.Parse(c.Buf, c.Msg)
	c.tried, c.Parsed = true, err == nil
	if err != nil && c.w != nil {
		c.w.cnt.v[cParseErrBase+parseErrIndex(err)]++
	}
	return err
}

// TxBuf returns an empty transmit buffer at its full capacity to build the
// outgoing message in, or nil when the port has none left (then return
// c.Drop(DropNoTxBuffer)). Calling it again for the same message returns
// the same buffer.
func (c *Ctx) TxBuf() []byte {
	if !c.hasOut {
		if c.w == nil || !c.w.takeTx(&c.out) {
			return nil
		}
		c.w.fitTx(&c.out, len(c.Buf)+TxSlack)
	}
	c.hasOut = true
	return c.out.Payload[:cap(c.out.Payload)]
}

// Send forwards the first n bytes of the TxBuf buffer to addr.
func (c *Ctx) Send(to netip.AddrPort, n int) Verdict {
	if !c.hasOut || n <= 0 || n > cap(c.out.Payload) || !to.IsValid() {
		return c.Drop(DropNoVerdict)
	}
	c.out.Payload = c.out.Payload[:n]
	c.out.Dst, c.out.Src, c.out.HW = to, netip.AddrPort{}, [6]byte{}
	c.outReady = true
	return Forward
}

// Reply sends the first n bytes of the TxBuf buffer back to the message's
// source, from the address the message reached, to the sender's link-layer
// address (no neighbour lookup).
func (c *Ctx) Reply(n int) Verdict {
	if !c.hasOut || n <= 0 || n > cap(c.out.Payload) {
		return c.Drop(DropNoVerdict)
	}
	c.out.Payload = c.out.Payload[:n]
	c.out.Dst, c.out.Src, c.out.HW = c.Src, c.Dst, c.HW
	c.outReady = true
	return Respond
}

// Respond answers the parsed request statelessly (sipcore.BuildResponse)
// with status and reason; extra are complete header lines to add. ACKs and
// responses are never answered: they are dropped (DropNoAnswer). The
// message must have been through Parse.
func (c *Ctx) Respond(status int, reason string, extra []byte) Verdict {
	if !c.tried { // Msg still describes the previous message
		return c.Drop(DropNoVerdict)
	}
	m := c.Msg
	if !m.IsRequest || m.Method == sipcore.MethodACK {
		return c.Drop(DropNoAnswer)
	}
	b := c.TxBuf()
	if b == nil {
		return c.Drop(DropNoTxBuffer)
	}
	ro := sipcore.ResponseOptions{Key: c.w.key, Extra: extra}
	n, err := sipcore.BuildResponse(b, m, status, reason, c.Src, &ro)
	if err != nil {
		return c.Drop(DropBuildFailed)
	}
	return c.Reply(n)
}

// replyStatus is the status code of the response built for Reply, 0 when
// what was built is not a response.
func (c *Ctx) replyStatus() int {
	p := c.out.Payload
	if !c.outReady || len(p) < 12 || string(p[:8]) != "SIP/2.0 " || p[11] != ' ' {
		return 0
	}
	st := 0
	for _, d := range p[8:11] {
		if d < '0' || d > '9' {
			return 0
		}
		st = st*10 + int(d-'0')
	}
	return st
}

// Drop discards the message, counted under r.
func (c *Ctx) Drop(r DropReason) Verdict {
	c.reason, c.own = r, 0
	return Drop
}

// DropOwn discards the message for the stage's own reason i (an index in
// its StageDef.Drops): counted once, under the stage, and in the node's
// drops as DropPolicy.
func (c *Ctx) DropOwn(i int) Verdict {
	c.reason, c.own = DropPolicy, i+1
	return Drop
}

// Park asks the helper ref names (Env.Helper) for key and sets the message
// aside for at most wait; the same stage's Resume gets it back with
// c.Answer set, or it gets the helper's fallback when the pool is full or
// the answer is late. key is only read during this message's run.
func (c *Ctx) Park(ref HelperRef, key []byte, wait time.Duration) Verdict {
	c.parkRef, c.parkKey, c.parkWait = ref, key, wait
	return Park
}

// Worker returns the ID of the worker running the stage.
func (c *Ctx) Worker() int {
	if c.w == nil {
		return 0
	}
	return c.w.cfg.ID
}

// RetryAfter is the header line every 503 of the node carries
// ("Retry-After: 5\r\n"), built once per configured value: the proxy's
// no-backend 503, the guard's, the park fallback's, auth's.
func RetryAfter(seconds int) []byte {
	if seconds <= 0 {
		seconds = 5
	}
	return []byte("Retry-After: " + strconv.Itoa(seconds) + "\r\n")
}
