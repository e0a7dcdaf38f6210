package config

import (
	"strings"
	"time"
)

// Drain is [drain]: how the node leaves service without dropping calls
// (an anycast/ECMP withdrawal, a restart): /healthz answers 503, new
// INVITEs are refused, calls under way go on until the node is idle.
type Drain struct {
	// Answer is what a new INVITE gets while draining: 503 (with
	// RetryAfter), 302 or 305 (with Peer as the Contact).
	Answer int `toml:"answer"`
	// Peer is the SIP URI a 302/305 sends callers to.
	Peer string `toml:"peer"`
	// RetryAfter is the Retry-After of the 503.
	RetryAfter Duration `toml:"retry_after"`
	// Idle is how long without a call's message makes a draining node
	// idle (drained).
	Idle Duration `toml:"idle"`
	// Timeout is the longest a drain waits for idle before it counts as
	// done anyway.
	Timeout Duration `toml:"timeout"`
	// OnSigterm is how long SIGTERM drains first when calls are under
	// way; 0 stops at once.
	OnSigterm Duration `toml:"on_sigterm"`
}

func (d *Drain) setDefaults() {
	*d = Drain{Answer: 503, RetryAfter: Duration(30 * time.Second), Idle: Duration(time.Second),
		Timeout: Duration(time.Minute), OnSigterm: Duration(2 * time.Second)}
}

func (d *Drain) check(p *problems, _ *Config, _ System) {
	switch d.Answer {
	case 503:
	case 302, 305:
		if !strings.HasPrefix(d.Peer, "sip:") || strings.ContainsAny(d.Peer, "<>\r\n \t") || len(d.Peer) < 5 {
			p.addv("drain.peer", d.Peer, "answer %d sends callers to a peer: give its SIP URI, such as \"sip:192.0.2.7:5060\"", d.Answer)
		}
	default:
		p.addv("drain.answer", d.Answer, "want 503 (Retry-After), 302 (Moved Temporarily) or 305 (Use Proxy) to drain.peer")
	}
	if r := d.RetryAfter.Std(); r < time.Second || r > maxRetryAfter || r%time.Second != 0 {
		p.addv("drain.retry_after", d.RetryAfter, "want whole seconds from 1s to %v: Retry-After is sent in seconds", maxRetryAfter)
	}
	if i := d.Idle.Std(); i < 100*time.Millisecond || i > 10*time.Minute {
		p.addv("drain.idle", d.Idle, "want 100ms to 10m: the quiet time that makes a draining node idle")
	}
	if t := d.Timeout.Std(); t < d.Idle.Std() || t > 24*time.Hour {
		p.addv("drain.timeout", d.Timeout, "want from drain.idle (%v) to 24h", d.Idle)
	}
	if s := d.OnSigterm.Std(); s < 0 || s > time.Hour {
		p.addv("drain.on_sigterm", d.OnSigterm, "want 0 (stop at once) to 1h; keep it below the stop timeout of systemd or the orchestrator")
	}
}
