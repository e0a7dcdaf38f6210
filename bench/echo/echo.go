package echo

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/afxdp"
	"sipedge/afxdp/vethtest"
	"sipedge/pipeline/port"
	"sipedge/pipeline/port/socketport"
	"sipedge/pipeline/port/xdpport"
)

// Port kinds Run knows.
const (
	AFXDP  = "afxdp"
	Socket = "socket"
)

// Options shape one run.
type Options struct {
	// Packets per port (default 100000).
	Packets int
	// Payload is the UDP payload size in bytes (default 600, a typical
	// SIP request).
	Payload int
	// Rate caps the sender in packets/s; 0 leaves only the window.
	Rate int
	// Window is how many datagrams may be unanswered before the sender
	// waits (default 128: veth's ring holds 256 and drops the rest).
	Window int
	// Ports are the port kinds to run, in order (default afxdp, socket).
	Ports []string
	// Timeout bounds each port's run (default 60s).
	Timeout time.Duration
}

func (o *Options) defaults() {
	if o.Packets <= 0 {
		o.Packets = 100000
	}
	if o.Payload <= 0 {
		o.Payload = 600
	}
	if o.Window <= 0 {
		o.Window = 128
	}
	if len(o.Ports) == 0 {
		o.Ports = []string{AFXDP, Socket}
	}
	if o.Timeout <= 0 {
		o.Timeout = 60 * time.Second
	}
}

// Result is one port's run.
type Result struct {
	// Port is the kind, Mode the port's own description (bind and XDP
	// modes for afxdp, recvmmsg/sendmmsg for the socket).
	Port, Mode string
	Payload    int
	// Sent by the peer, Echoed by the receiver, Replies back at the peer.
	Sent, Echoed, Replies int
	// Wall is from the first send to the last reply; CPU the receiving
	// thread's user+system time over the whole run.
	Wall, CPU time.Duration
}

// PacketsPerSecond is replies per second of wall time.
func (r Result) PacketsPerSecond() float64 {
	if r.Wall <= 0 {
		return 0
	}
	return float64(r.Replies) / r.Wall.Seconds()
}

// CPUPerPacket is the receiving thread's CPU time per echoed datagram.
func (r Result) CPUPerPacket() time.Duration {
	if r.Echoed == 0 {
		return 0
	}
	return r.CPU / time.Duration(r.Echoed)
}

// Run runs the benchmark for each of opts.Ports over v (IPv4 only: a
// pair with vethtest.Options{IPv4Only: true} will do), one after the
// other (each port has the interface to itself).
func Run(v *vethtest.Pair, opts Options) ([]Result, error) {
	opts.defaults()
	var out []Result
	for i, kind := range opts.Ports {
		// A fresh SIP port per run: a socket left in TIME_WAIT-like state
		// or a slow-path socket being torn down never collides.
		r, err := runOne(v, kind, uint16(5060+2*i), opts)
		if err != nil {
			return out, err
		}
		out = append(out, r)
	}
	return out, nil
}

func openPort(v *vethtest.Pair, kind string, sip uint16) (port.Port, func() error, error) {
	switch kind {
	case AFXDP:
		g, err := xdpport.Open(v.Host, 1, xdpport.Config{
			Ports:    []uint16{sip},
			XDPMode:  afxdp.XDPNative,
			BindMode: afxdp.BindCopy,
		})
		if err != nil {
			return nil, nil, err
		}
		return g.Ports()[0], g.Close, nil
	case Socket:
		p, err := socketport.Open(socketport.Config{
			Listen:     netip.AddrPortFrom(v.HostV4, sip),
			RecvBuffer: 4 << 20,
		})
		if err != nil {
			return nil, nil, err
		}
		return p, p.Close, nil
	}
	return nil, nil, fmt.Errorf("echo: unknown port %q: use %s or %s", kind, AFXDP, Socket)
}

type workerResult struct {
	echoed int
	cpu    time.Duration
	err    error
}

// worker answers every datagram on p until stop closes, on a locked OS
// thread whose CPU time it measures.
//
// Measuring starts when begin closes (after the warm-up) and the worker
// acknowledges on started, so neither the warm-up nor a poll wait before
// it counts.
func worker(p port.Port, begin <-chan struct{}, started chan<- struct{}, stop <-chan struct{}, res chan<- workerResult) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var ru0, ru1 unix.Rusage
	unix.Getrusage(unix.RUSAGE_THREAD, &ru0)
	rx := make([]port.Packet, 64)
	tx := make([]port.Packet, 64)
	n, base := 0, 0
	measuring := false
	var err error
loop:
	for {
		select {
		case <-stop:
			break loop
		default:
		}
		if !measuring {
			select {
			case <-begin:
				measuring, base = true, n
				unix.Getrusage(unix.RUSAGE_THREAD, &ru0)
				close(started)
			default:
			}
		}
		k, rerr := port.ReceiveWait(p, rx, 10*time.Millisecond)
		if rerr != nil {
			err = rerr
			break
		}
		if k == 0 {
			continue
		}
		m := p.Alloc(tx[:k])
		for i := 0; i < m; i++ {
			tx[i].Payload = append(tx[i].Payload, rx[i].Payload...)
			tx[i].Dst, tx[i].Src, tx[i].HW = rx[i].Src, rx[i].Dst, rx[i].HW
		}
		p.Release(rx[:k])
		p.Transmit(tx[:m])
		n += k
	}
	unix.Getrusage(unix.RUSAGE_THREAD, &ru1)
	cpu := time.Duration(ru1.Utime.Nano() + ru1.Stime.Nano() - ru0.Utime.Nano() - ru0.Stime.Nano())
	res <- workerResult{n - base, cpu, err}
}

func runOne(v *vethtest.Pair, kind string, sip uint16, opts Options) (Result, error) {
	p, closePort, err := openPort(v, kind, sip)
	if err != nil {
		return Result{}, err
	}
	defer closePort()
	c, err := v.Listen(netip.AddrPortFrom(v.PeerV4, 0))
	if err != nil {
		return Result{}, err
	}
	defer c.Close()
	c.SetReadBuffer(4 << 20)
	dst := netip.AddrPortFrom(v.HostV4, sip)

	var replies atomic.Int64
	stop, begin, started := make(chan struct{}), make(chan struct{}), make(chan struct{})
	wres := make(chan workerResult, 1)
	go worker(p, begin, started, stop, wres)
	stopped := false
	stopWorker := func() workerResult {
		if !stopped {
			close(stop)
			stopped = true
		}
		return <-wres
	}
	defer func() {
		if !stopped {
			stopWorker()
		}
	}()

	// Warm-up: ARP, the first frames, until one echo comes back.
	if err := warmUp(c, dst, opts.Payload); err != nil {
		return Result{}, fmt.Errorf("echo: %s port %s: %w", kind, p.Name(), err)
	}
	close(begin)
	select {
	case <-started:
	case <-time.After(5 * time.Second):
		return Result{}, fmt.Errorf("echo: %s worker did not start measuring within 5s", kind)
	}

	progress := make(chan struct{}, 1)
	readerDone := make(chan struct{})
	deadline := time.Now().Add(opts.Timeout)
	c.SetReadDeadline(deadline)
	var lastReply atomic.Int64
	go func() {
		defer close(readerDone)
		buf := make([]byte, 65536)
		for {
			if _, err := c.Read(buf); err != nil {
				return
			}
			replies.Add(1)
			lastReply.Store(time.Now().UnixNano())
			select {
			case progress <- struct{}{}:
			default:
			}
		}
	}()
	start := time.Now()
	sent := send(c, dst, opts, &replies, progress, deadline)
	// Drain: until every reply is in, or none came for 300 ms.
	for quiet := time.Now(); replies.Load() < int64(sent) && time.Since(quiet) < 300*time.Millisecond && time.Now().Before(deadline); {
		select {
		case <-progress:
			quiet = time.Now()
		case <-time.After(20 * time.Millisecond):
		}
	}
	c.SetReadDeadline(time.Now()) // ends the reader
	<-readerDone
	wr := stopWorker()
	if wr.err != nil && !errors.Is(wr.err, port.ErrClosed) {
		return Result{}, fmt.Errorf("echo: %s worker: %w", kind, wr.err)
	}
	end := time.Unix(0, lastReply.Load())
	if end.Before(start) {
		end = start
	}
	return Result{
		Port: kind, Mode: p.Name(), Payload: opts.Payload,
		Sent: sent, Echoed: wr.echoed, Replies: int(replies.Load()),
		Wall: end.Sub(start), CPU: wr.cpu,
	}, nil
}

// warmUp sends one datagram every 50 ms until one comes back, within 5 s.
func warmUp(c *net.UDPConn, dst netip.AddrPort, size int) error {
	buf := make([]byte, 65536)
	payload := make([]byte, size)
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if _, err := c.WriteToUDPAddrPort(payload, dst); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, err := c.Read(buf); err == nil {
			// Swallow any late duplicates of the warm-up.
			for {
				c.SetReadDeadline(time.Now().Add(20 * time.Millisecond))
				if _, err := c.Read(buf); err != nil {
					return nil
				}
			}
		}
	}
	return errors.New("no echo within 5s of warm-up")
}

// send sends opts.Packets datagrams, keeping at most opts.Window
// unanswered (a stall of 2 ms counts the missing ones as lost and goes on)
// and at most opts.Rate per second. It returns how many it sent.
func send(c *net.UDPConn, dst netip.AddrPort, opts Options, replies *atomic.Int64, progress <-chan struct{}, deadline time.Time) int {
	payload := make([]byte, opts.Payload)
	copy(payload, "OPTIONS sip:echo@sipedge SIP/2.0\r\n")
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	start := time.Now()
	sent, lost := 0, int64(0)
	for sent < opts.Packets && time.Now().Before(deadline) {
		if opts.Rate > 0 {
			due := start.Add(time.Duration(float64(sent) / float64(opts.Rate) * float64(time.Second)))
			if d := time.Until(due); d > time.Millisecond {
				time.Sleep(d)
			}
		}
		if _, err := c.WriteToUDPAddrPort(payload, dst); err == nil {
			sent++
		}
	wait:
		for int64(sent)-replies.Load()-lost >= int64(opts.Window) {
			timer.Reset(2 * time.Millisecond)
			select {
			case <-progress:
			case <-timer.C:
				// Nothing came back for 2 ms: what is outstanding beyond
				// half the window was dropped on the way.
				lost = int64(sent) - replies.Load() - int64(opts.Window)/2
				break wait
			}
		}
	}
	return sent
}

// WriteTable prints results as a markdown table.
func WriteTable(w io.Writer, rs []Result) {
	fmt.Fprintln(w, "| port | mode | payload B | sent | echoed | replies | packets/s | receiver CPU ns/packet |")
	fmt.Fprintln(w, "|---|---|---:|---:|---:|---:|---:|---:|")
	for _, r := range rs {
		fmt.Fprintf(w, "| %s | %s | %d | %d | %d | %d | %.0f | %d |\n",
			r.Port, r.Mode, r.Payload, r.Sent, r.Echoed, r.Replies, r.PacketsPerSecond(), r.CPUPerPacket().Nanoseconds())
	}
}
