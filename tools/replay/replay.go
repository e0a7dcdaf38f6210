package replay

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"sipedge/afxdp/frame"
	"sipedge/pipeline/port/capture"
	"sipedge/sipcore"
)

// Options say what to replay, where and how fast.
type Options struct {
	// Inputs are capture files (pcap or pcapng), replayed in order.
	Inputs []string
	// Into is "pipeline", "udp:HOST:PORT", "afxdp:IFACE" or "pcap:FILE".
	Into string
	// Speed scales the capture's own timing (2 = twice as fast); 0 sends
	// as fast as possible. Rate, when above 0, sends that many datagrams
	// per second instead.
	Speed, Rate float64
	// Loop is how many times the inputs are replayed (at least 1). From
	// the second loop on, every Call-ID gets the suffix "-L<loop>" so that
	// a looped call is a new call to the receiver.
	Loop int
	// MapSrc and MapDst rewrite the datagrams' endpoints.
	MapSrc, MapDst []Mapping
	// SIPPorts: a UDP datagram from or to one of them is SIP even when it
	// does not look like it (malformed traffic to a SIP port is kept).
	SIPPorts []uint16
	// Workers is the number of pipeline workers (pipeline mode); 0 runs
	// one per [io] core of the configuration.
	Workers int
	// Config is the appliance configuration the pipeline mode builds its
	// pipeline from ("" is the embedded default config.toml).
	Config string
	// Secret, when set, replaces the configuration's [node] secret: give
	// the one the capture was made with (sipgen --secret) so the
	// responses' branches are recognised as the proxy's own.
	Secret string

	// Progress receives the progress display (nil: none). Terminal selects
	// the redrawn bar over plain lines. Every is the interval between
	// updates; Now is the clock (time.Now when nil).
	Progress io.Writer
	Terminal bool
	Every    time.Duration
	Now      func() time.Time
}

// Datagram is one SIP datagram on its way to a sink.
type Datagram struct {
	Payload  []byte
	Src, Dst netip.AddrPort
	// TS is the capture timestamp (plus the loop's offset).
	TS time.Time
	// Loop and Input say which pass and which capture it comes from.
	Loop, Input int
}

// Sink is where datagrams go.
type Sink interface {
	Send(d *Datagram) error
	Close() error
}

// Mapping rewrites one endpoint: From matches an address (any port when
// From has port 0) and To replaces it (keeping the port when To's is 0).
type Mapping struct {
	From, To netip.AddrPort
}

// ParseMapping parses "A=B", each side an IP or IP:PORT ([v6]:PORT).
func ParseMapping(s string) (Mapping, error) {
	a, b, ok := strings.Cut(s, "=")
	if !ok {
		return Mapping{}, fmt.Errorf("mapping %q: want FROM=TO, each an IP or IP:PORT", s)
	}
	from, err1 := parseEndpoint(a)
	to, err2 := parseEndpoint(b)
	if err1 != nil || err2 != nil {
		return Mapping{}, fmt.Errorf("mapping %q: want FROM=TO, each an IP or IP:PORT ([v6]:PORT for IPv6)", s)
	}
	if from.Addr().Unmap().Is4() != to.Addr().Unmap().Is4() {
		return Mapping{}, fmt.Errorf("mapping %q: both sides must be of the same IP family", s)
	}
	return Mapping{from, to}, nil
}

func parseEndpoint(s string) (netip.AddrPort, error) {
	s = strings.TrimSpace(s)
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	a, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(a.Unmap(), 0), nil
}

func applyMap(ms []Mapping, ap netip.AddrPort) (netip.AddrPort, bool) {
	a := netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	for _, m := range ms {
		if m.From.Addr() != a.Addr() || (m.From.Port() != 0 && m.From.Port() != a.Port()) {
			continue
		}
		port := a.Port()
		if m.To.Port() != 0 {
			port = m.To.Port()
		}
		return netip.AddrPortFrom(m.To.Addr(), port), true
	}
	return ap, false
}

// LooksSIP reports whether a UDP payload starts like a SIP message: a
// status line, or a request line ending in SIP/2.0.
func LooksSIP(p []byte) bool {
	if bytes.HasPrefix(p, []byte("SIP/2.0 ")) {
		return true
	}
	line := p[:min(len(p), 2048)]
	i := bytes.IndexByte(line, '\n')
	if i < 0 {
		return false
	}
	line = bytes.TrimRight(line[:i], "\r")
	if !bytes.HasSuffix(line, []byte(" SIP/2.0")) || len(line) == 0 {
		return false
	}
	for _, c := range line[:bytes.IndexByte(line, ' ')] {
		if c < 'A' || c > 'Z' {
			return false
		}
	}
	return true
}

// UniquifyCallID appends "-L<loop>" to the Call-ID of msg, writing the
// result to dst. Only the header section grows, so Content-Length stays
// right. ok is false (dst unchanged) when msg does not parse.
func UniquifyCallID(dst, msg []byte, loop int, m *sipcore.Msg) ([]byte, bool) {
	start := len(dst)
	dst = append(dst, msg...)
	if sipcore.Parse(dst[start:], m) != nil || m.CallID.Len == 0 {
		return dst[:start], false
	}
	end := start + m.CallID.End()
	suffix := "-L" + strconv.Itoa(loop)
	dst = append(dst, suffix...)
	copy(dst[end+len(suffix):], dst[end:len(dst)-len(suffix)])
	copy(dst[end:], suffix)
	return dst, true
}

// source reads the inputs loop after loop, yielding the SIP datagrams
// rewritten as the options say, and counting everything into s.
type source struct {
	o       *Options
	s       *Summary
	loop    int
	input   int
	r       *capture.Reader
	f       *os.File
	cr      countingReader
	sizes   []int64
	total   int64
	done    int64 // bytes of inputs fully read (all loops)
	d       capture.Datagram
	m       sipcore.Msg
	buf     []byte
	first   time.Time // first timestamp of the current loop
	lastTS  time.Time
	offset  time.Duration // added to the current loop's timestamps
	ports   map[uint16]bool
	stopped bool
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func newSource(o *Options, s *Summary) (*source, error) {
	src := &source{o: o, s: s, ports: map[uint16]bool{}}
	for _, p := range o.SIPPorts {
		src.ports[p] = true
	}
	for _, in := range o.Inputs {
		st, err := os.Stat(in)
		if err != nil {
			return nil, fmt.Errorf("capture %s: %w", in, err)
		}
		src.sizes = append(src.sizes, st.Size())
		src.total += st.Size() * int64(o.Loop)
	}
	return src, nil
}

// fraction is how much of the work is done, for the progress display.
func (src *source) fraction() float64 {
	if src.total == 0 {
		return 1
	}
	return float64(src.done+src.cr.n) / float64(src.total)
}

func (src *source) close() {
	if src.r != nil {
		src.r.Close()
		src.r = nil
	}
}

// next fills d with the next SIP datagram; io.EOF after the last loop.
func (src *source) next(d *Datagram) error {
	for {
		if src.r == nil {
			if src.input == len(src.o.Inputs) {
				src.input = 0
				src.loop++
				// The next loop follows the last datagram, 1 ms later.
				if !src.first.IsZero() {
					src.offset += src.lastTS.Sub(src.first) + time.Millisecond
				}
				src.first = time.Time{}
				if src.loop == src.o.Loop {
					return io.EOF
				}
			}
			name := src.o.Inputs[src.input]
			f, err := os.Open(name)
			if err != nil {
				return fmt.Errorf("capture %s: %w", name, err)
			}
			src.cr = countingReader{r: f}
			r, err := capture.NewReader(&src.cr, name)
			if err != nil {
				f.Close()
				return err
			}
			src.r = r
			src.f = f
		}
		err := src.r.Next(&src.d)
		if err == io.EOF {
			st := src.r.Stats()
			src.s.Records += st.Records
			src.s.Skipped += st.Skipped
			src.s.Reassembled += st.Reassembled
			src.s.FragmentsLost += st.Lost
			src.f.Close()
			src.r = nil
			src.done += src.sizes[src.input]
			src.cr.n = 0
			src.input++
			continue
		}
		if err != nil {
			return err
		}
		src.s.UDP++
		p := src.d.Payload
		if !LooksSIP(p) && !src.ports[src.d.Src.Port()] && !src.ports[src.d.Dst.Port()] {
			src.s.NonSIP++
			continue
		}
		if src.first.IsZero() {
			src.first, src.lastTS = src.d.TS, src.d.TS
		}
		if src.d.TS.After(src.lastTS) {
			src.lastTS = src.d.TS
		}
		src.s.count(p, &src.m)
		if src.loop > 0 {
			var ok bool
			src.buf, ok = UniquifyCallID(src.buf[:0], p, src.loop, &src.m)
			if ok {
				p = src.buf
				src.s.CallIDsRewritten++
			}
		}
		d.Payload, d.Loop, d.Input = p, src.loop, src.input
		d.TS = src.d.TS.Add(src.offset)
		var r1, r2 bool
		d.Src, r1 = applyMap(src.o.MapSrc, src.d.Src)
		d.Dst, r2 = applyMap(src.o.MapDst, src.d.Dst)
		if r1 || r2 {
			src.s.Rewritten++
		}
		src.s.SIP++
		return nil
	}
}

// udpSink sends every datagram to one address from one socket.
type udpSink struct {
	c  *net.UDPConn
	to netip.AddrPort
}

func newUDPSink(target string) (*udpSink, error) {
	to, err := netip.ParseAddrPort(target)
	if err != nil {
		ua, rerr := net.ResolveUDPAddr("udp", target)
		if rerr != nil {
			return nil, fmt.Errorf("--into udp:%s: %v (want HOST:PORT)", target, rerr)
		}
		to = ua.AddrPort()
	}
	network := "udp4"
	if to.Addr().Unmap().Is6() {
		network = "udp6"
	}
	to = netip.AddrPortFrom(to.Addr().Unmap(), to.Port())
	c, err := net.ListenUDP(network, nil)
	if err != nil {
		return nil, fmt.Errorf("--into udp:%s: open a UDP socket: %w", target, err)
	}
	_ = c.SetWriteBuffer(4 << 20)
	return &udpSink{c: c, to: to}, nil
}

func (u *udpSink) Send(d *Datagram) error {
	_, err := u.c.WriteToUDPAddrPort(d.Payload, u.to)
	return err
}

func (u *udpSink) Close() error { return u.c.Close() }

// pcapSink writes the replayed datagrams, as rewritten, into a capture.
type pcapSink struct {
	f *os.File
	w *capture.Writer
}

func newPcapSink(path string) (*pcapSink, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--into pcap:%s: %w", path, err)
	}
	w, err := capture.NewWriter(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &pcapSink{f: f, w: w}, nil
}

func (p *pcapSink) Send(d *Datagram) error {
	h := frame.Header{Src: d.Src, Dst: d.Dst}
	return p.w.WriteDatagram(d.TS, &h, d.Payload)
}

func (p *pcapSink) Close() error {
	err := p.w.Flush()
	if cerr := p.f.Close(); err == nil {
		err = cerr
	}
	return err
}

// flusher is a sink that batches: Flush sends what it holds and returns how
// many of those the destination refused.
type flusher interface {
	Flush() (unsent int, err error)
}

// openSink turns Options.Into into a sink (the pipeline mode has none).
func openSink(o *Options, s *Summary) (Sink, error) {
	into := o.Into
	kind, arg, _ := strings.Cut(into, ":")
	switch kind {
	case "pipeline":
		return nil, fmt.Errorf("--into %q: pipeline takes no argument (the configuration comes from --config)", into)
	case "udp":
		return newUDPSink(arg)
	case "pcap":
		if arg == "" {
			return nil, errors.New("--into pcap:FILE needs a file name")
		}
		return newPcapSink(arg)
	case "afxdp":
		s.AFXDP = &AFXDPReport{}
		return newAFXDPSink(o, arg, s.AFXDP)
	}
	return nil, fmt.Errorf("--into %q: want pipeline, udp:HOST:PORT, afxdp:IFACE or pcap:FILE", into)
}

// Run replays as o says and returns the summary. The error is the first
// one that stopped the replay; send errors are counted, not fatal, and
// listed in the summary.
func Run(o Options) (*Summary, error) {
	if o.Loop == 0 {
		o.Loop = 1
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Every == 0 {
		o.Every = time.Second
	}
	if o.Into == "" {
		o.Into = "pipeline"
	}
	s := newSummary(&o)
	switch {
	case len(o.Inputs) == 0:
		return s, errors.New("no capture to replay: give one or more pcap/pcapng files")
	case o.Loop < 0:
		return s, fmt.Errorf("--loop %d: want 1 or more", o.Loop)
	case o.Speed < 0 || o.Rate < 0:
		return s, errors.New("--speed and --rate must not be negative")
	}
	if o.Into == "pipeline" {
		return s, runPipeline(&o, s)
	}
	src, err := newSource(&o, s)
	if err != nil {
		return s, err
	}
	defer src.close()
	sink, err := openSink(&o, s)
	if err != nil {
		return s, err
	}
	start := o.Now()
	defer func() { s.finish(o.Now().Sub(start)) }()
	prog := newProgress(&o, src, s)
	var d Datagram
	var virt time.Duration
	var prev time.Time
	lastInput, lastLoop := -1, -1
	var runErr error
	for {
		err := src.next(&d)
		if err == io.EOF {
			break
		}
		if err != nil {
			runErr = err
			break
		}
		// Pacing: the capture's gaps scaled by Speed, or 1/Rate apart.
		var due time.Duration
		switch {
		case o.Rate > 0:
			due = time.Duration(float64(s.SIP-1) / o.Rate * 1e9)
		case o.Speed > 0:
			// A new capture or pass starts right away: its epoch has
			// nothing to do with the previous one's.
			if d.Input != lastInput || d.Loop != lastLoop {
				prev, lastInput, lastLoop = time.Time{}, d.Input, d.Loop
			}
			if !prev.IsZero() && d.TS.After(prev) {
				virt += d.TS.Sub(prev)
			}
			prev = d.TS
			due = time.Duration(float64(virt) / o.Speed)
		}
		if due > 0 {
			if wait := due - o.Now().Sub(start); wait > 100*time.Microsecond {
				// What a batching sink holds is due now.
				if fl, ok := sink.(flusher); ok {
					flushed(s, fl)
				}
				time.Sleep(wait)
			}
		}
		if err := sink.Send(&d); err != nil {
			s.SendErrors++
			s.addError(fmt.Sprintf("send datagram %d (%v -> %v): %v", s.SIP, d.Src, d.Dst, err))
		} else {
			s.Sent++
			s.Bytes += uint64(len(d.Payload))
		}
		prog.tick(false)
	}
	if fl, ok := sink.(flusher); ok {
		flushed(s, fl)
	}
	if err := sink.Close(); err != nil && runErr == nil {
		runErr = err
	}
	prog.tick(true)
	return s, runErr
}

// flushed flushes a batching sink and moves what it could not send from
// sent to send errors.
func flushed(s *Summary, fl flusher) {
	unsent, err := fl.Flush()
	if unsent > 0 {
		s.Sent -= uint64(unsent)
		s.SendErrors += uint64(unsent)
		s.addError(fmt.Sprintf("%d datagrams not sent (see the port's drop counters)", unsent))
	}
	if err != nil {
		s.addError(err.Error())
	}
}
