package pipeline

import (
	"net/netip"
	"time"

	"sipedge/pipeline/port"
	"sipedge/sipcore"
)

// Verdict is what a stage decides for one message.
type Verdict uint8

// Verdicts. Only Continue passes the message to the next stage; the others
// end its run (Park until the helper answers).
const (
	// Continue hands the message to the next stage.
	Continue Verdict = iota
	// Forward sends the message the stage built (Ctx.Send) to an address.
	Forward
	// Respond sends the response the stage built (Ctx.Respond, Ctx.Reply)
	// back to the message's source.
	Respond
	// Drop discards the message, counted under the reason given to Ctx.Drop.
	Drop
	// Park copies the message aside until an async helper answers
	// (Ctx.Park); it resumes at the next stage.
	Park
	numVerdicts
)

var verdictNames = [numVerdicts]string{"continue", "forward", "respond", "drop", "park"}

func (v Verdict) String() string {
	if v < numVerdicts {
		return verdictNames[v]
	}
	return "invalid"
}

// DropReason says why a message was dropped. The set is fixed so that every
// drop lands in a per-core counter without a map or a string.
type DropReason uint8

// Drop reasons. Later stages add theirs here (one line each).
const (
	DropNone DropReason = iota
	// DropUnparsable: the message failed to parse and deserves no answer
	// (a response, an ACK, or a start line that is not SIP).
	DropUnparsable
	// DropNoAnswer: a response was due but the message may not be answered
	// (an ACK, or a response).
	DropNoAnswer
	// DropAckToSelf: an ACK for a response this node generated.
	DropAckToSelf
	// DropResponseNotOurs: a response whose top Via is not ours (RFC 3261 16.7).
	DropResponseNotOurs
	// DropResponseNoNextVia: a response with only our Via: nowhere to send it.
	DropResponseNoNextVia
	// DropUnresolved: the next hop is a host name; the hot path never resolves.
	DropUnresolved
	// DropNoBackend: no backend is up and the message may not be answered.
	DropNoBackend
	// DropNoTxBuffer: the port had no transmit buffer.
	DropNoTxBuffer
	// DropBuildFailed: the outgoing message did not fit the transmit buffer.
	DropBuildFailed
	// DropParkFull: the park pool had no slot (fallback configured as drop).
	DropParkFull
	// DropParkTimeout: the helper did not answer in time (fallback drop).
	DropParkTimeout
	// DropParkTooLarge: the message is larger than a park slot.
	DropParkTooLarge
	// DropStopping: the message was parked when the worker stopped.
	DropStopping
	// DropNoVerdict: every stage said Continue, or a stage returned Forward
	// or Respond without building anything: a stage bug, counted.
	DropNoVerdict
	// DropPolicy: a stage's policy refused the message (guard, auth).
	DropPolicy
	numDropReasons
)

var dropNames = [numDropReasons]string{
	"none", "unparsable", "no-answer", "ack-to-self", "response-not-ours",
	"response-no-next-via", "next-hop-unresolved", "no-backend", "no-tx-buffer",
	"build-failed", "park-full", "park-timeout", "park-too-large", "stopping",
	"no-verdict", "policy",
}

func (r DropReason) String() string {
	if r < numDropReasons {
		return dropNames[r]
	}
	return "invalid"
}

// NumDropReasons is the size of the fixed drop reason set.
const NumDropReasons = int(numDropReasons)

// Stage is one step of the per-message pipeline. A stage instance belongs to
// one worker (it may keep per-core scratch state without locks) and must not
// allocate or block in Process.
type Stage interface {
	// Name is the stage's label in counters and logs.
	Name() string
	// Process looks at c and decides. To send something it fills a buffer
	// from c.TxBuf and returns c.Send/c.Reply, or returns c.Respond; to
	// discard it returns c.Drop; to wait on I/O it returns c.Park.
	Process(c *Ctx) Verdict
}

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
	// Answer is the helper's answer when the message resumes after a Park,
	// nil otherwise.
	Answer *Answer
	// Now is the loop's clock reading (ns, monotonic), taken once per batch.
	Now int64

	w        *Worker
	tried    bool // Parse ran on this message: Msg describes Buf
	out      port.Packet
	hasOut   bool // out holds a buffer from the port
	outReady bool // out is built and addressed
	reason   DropReason
	parkHelp int
	parkKey  []byte
	parkWait time.Duration
}

func (c *Ctx) reset(buf []byte, src, dst netip.AddrPort, hw [6]byte) {
	c.Buf, c.Src, c.Dst, c.HW = buf, src, dst, hw
	c.Parsed, c.tried, c.Answer = false, false, nil
	c.outReady, c.reason, c.parkKey = false, DropNone, nil
}

// Parse parses Buf into Msg (sipcore.Parse) and records the outcome in
// Parsed. After an error Msg holds what was parsed before it, which is what
// sipcore.ResponseFor and Respond need to answer it.
func (c *Ctx) Parse() error {
	err := sipcore.Parse(c.Buf, c.Msg)
	c.tried, c.Parsed = true, err == nil
	if err != nil {
		c.w.cnt[cParseErrBase+parseErrIndex(err)]++
	}
	return err
}

// TxBuf returns an empty transmit buffer at its full capacity to build the
// outgoing message in, or nil when the port has none left (then return
// c.Drop(DropNoTxBuffer)). Calling it again for the same message returns
// the same buffer.
func (c *Ctx) TxBuf() []byte {
	if !c.hasOut && !c.w.takeTx(&c.out) {
		return nil
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

// Drop discards the message, counted under r.
func (c *Ctx) Drop(r DropReason) Verdict {
	c.reason = r
	return Drop
}

// Park asks helper (its index in the worker's Helpers) for key and sets the
// message aside for at most wait; it resumes at the next stage with
// c.Answer set, or gets the configured fallback when the pool is full or the
// answer is late. key is only read during this message's run.
func (c *Ctx) Park(helper int, key []byte, wait time.Duration) Verdict {
	c.parkHelp, c.parkKey, c.parkWait = helper, key, wait
	return Park
}

// Worker returns the ID of the worker running the stage.
func (c *Ctx) Worker() int { return c.w.cfg.ID }
