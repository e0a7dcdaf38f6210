package pipeline

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"sync/atomic"
	"time"

	"sipedge/sipcore"
)

// ProbeConfig configures backend health probes ([dispatcher] probes).
type ProbeConfig struct {
	// Interval between probe rounds (5s) and how long a round waits for
	// answers (1s; must be shorter than Interval).
	Interval, Timeout time.Duration
	// DownAfter failed probes in a row mark a backend down (3); UpAfter
	// answered probes in a row mark it up again (2).
	DownAfter, UpAfter int
	// Listen is the local UDP address of the probe socket ("0.0.0.0:0":
	// any address, a free port). It is a kernel socket, not a pipeline
	// port, so probes never touch the hot path.
	Listen string
	// Errors counts the socket errors the prober went on after (a read
	// or write that failed for another reason than its timeout); nil
	// counts them in the prober only (Prober.Errors).
	Errors *atomic.Uint64
}

// Prober sends SIP OPTIONS to every backend each interval from its own
// goroutine and socket, and feeds the results to Backends. Any final
// response except 503 counts as alive (a 404 or 405 still proves a SIP
// stack is answering; 503 is the backend saying it takes no calls).
type Prober struct {
	cfg   ProbeConfig
	bk    *Backends
	conn  *net.UDPConn
	local netip.AddrPort
	nonce string
	round uint64
	buf   []byte
	msg   sipcore.Msg
}

// NewProber opens the probe socket.
func NewProber(bk *Backends, cfg ProbeConfig) (*Prober, error) {
	if cfg.Interval <= 0 {
		cfg.Interval = 5 * time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = time.Second
	}
	if cfg.Timeout >= cfg.Interval {
		return nil, fmt.Errorf("dispatcher probes: timeout %v must be shorter than interval %v", cfg.Timeout, cfg.Interval)
	}
	if cfg.DownAfter <= 0 {
		cfg.DownAfter = 3
	}
	if cfg.UpAfter <= 0 {
		cfg.UpAfter = 2
	}
	if cfg.Listen == "" {
		cfg.Listen = "0.0.0.0:0"
	}
	if cfg.Errors == nil {
		cfg.Errors = new(atomic.Uint64)
	}
	la, err := net.ResolveUDPAddr("udp", cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("dispatcher probes: listen address %q: %w", cfg.Listen, err)
	}
	conn, err := net.ListenUDP("udp", la)
	if err != nil {
		return nil, fmt.Errorf("dispatcher probes: open UDP socket on %q: %w", cfg.Listen, err)
	}
	var n [8]byte
	if _, err := rand.Read(n[:]); err != nil {
		conn.Close()
		return nil, fmt.Errorf("dispatcher probes: random nonce: %w", err)
	}
	return &Prober{
		cfg: cfg, bk: bk, conn: conn, nonce: hex.EncodeToString(n[:]),
		local: conn.LocalAddr().(*net.UDPAddr).AddrPort(), buf: make([]byte, sipcore.MaxMessageSize),
	}, nil
}

// Errors is how many socket errors the prober went on after.
func (p *Prober) Errors() uint64 { return p.cfg.Errors.Load() }

// LocalAddr is the probe socket's address.
func (p *Prober) LocalAddr() netip.AddrPort { return p.local }

// Run probes until ctx is done, then closes the socket and returns nil. A
// socket error other than the socket being closed is counted (Errors) and
// the next round goes on: a prober that stopped for good would leave every
// backend's health frozen at its last state.
func (p *Prober) Run(ctx context.Context) error {
	stop := context.AfterFunc(ctx, func() { p.conn.Close() })
	defer stop()
	defer p.conn.Close()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		start := time.Now()
		if err := p.probeRound(); err != nil {
			if ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return nil
			}
			p.cfg.Errors.Add(1)
		}
		t.Reset(p.cfg.Interval - time.Since(start))
	}
}

func (p *Prober) callID(i int) string {
	return "probe-" + strconv.FormatUint(p.round, 10) + "-" + strconv.Itoa(i) + "-" + p.nonce + "@sipedge"
}

func (p *Prober) options(to netip.AddrPort, i int) []byte {
	host := p.local.Addr()
	if host.IsUnspecified() {
		host = netip.IPv4Unspecified() // the backend answers to the source address (rport)
	}
	sentBy := netip.AddrPortFrom(host, p.local.Port()).String()
	uri := "sip:" + to.String()
	return []byte("OPTIONS " + uri + " SIP/2.0\r\n" +
		"Via: SIP/2.0/UDP " + sentBy + ";branch=z9hG4bK-" + p.nonce + "-" + strconv.FormatUint(p.round, 10) + "-" + strconv.Itoa(i) + ";rport\r\n" +
		"Max-Forwards: 70\r\n" +
		"From: <sip:sipedge@" + sentBy + ">;tag=" + p.nonce + "\r\n" +
		"To: <" + uri + ">\r\n" +
		"Call-ID: " + p.callID(i) + "\r\n" +
		"CSeq: " + strconv.FormatUint(p.round%(1<<31), 10) + " OPTIONS\r\n" +
		"Content-Length: 0\r\n\r\n")
}

// probeRound probes every backend once and waits up to Timeout for answers.
func (p *Prober) probeRound() error {
	p.round++
	set := p.bk.Load()
	pending := make(map[string]netip.AddrPort, len(set.Backends))
	for i, b := range set.Backends {
		msg := p.options(b.Addr, i)
		_, err := p.conn.WriteToUDPAddrPort(msg, b.Addr)
		if err != nil && !errors.Is(err, net.ErrClosed) {
			// The error may be one queued by an earlier datagram (an
			// ICMP error of another backend's probe): once more.
			p.cfg.Errors.Add(1)
			_, err = p.conn.WriteToUDPAddrPort(msg, b.Addr)
		}
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			p.cfg.Errors.Add(1)
			p.bk.observe(b.Addr, false, p.cfg.DownAfter, p.cfg.UpAfter)
			continue
		}
		pending[p.callID(i)] = b.Addr
	}
	deadline := time.Now().Add(p.cfg.Timeout)
	if err := p.conn.SetReadDeadline(deadline); err != nil {
		return err
	}
	for len(pending) > 0 {
		n, _, err := p.conn.ReadFromUDPAddrPort(p.buf)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, net.ErrClosed) {
				break
			}
			// A queued socket error (an ICMP error with IP_RECVERR, a
			// full buffer): counted; the answers behind it still come.
			p.cfg.Errors.Add(1)
			if time.Now().After(deadline) {
				break
			}
			continue
		}
		if sipcore.Parse(p.buf[:n], &p.msg) != nil || p.msg.IsRequest || p.msg.StatusCode < 200 {
			continue
		}
		id := string(p.msg.B(p.msg.CallID))
		addr, ok := pending[id]
		if !ok {
			continue // an answer from an earlier round, or not ours
		}
		delete(pending, id)
		p.bk.observe(addr, p.msg.StatusCode != 503, p.cfg.DownAfter, p.cfg.UpAfter)
	}
	for _, addr := range pending {
		p.bk.observe(addr, false, p.cfg.DownAfter, p.cfg.UpAfter)
	}
	return nil
}
