package harness

import (
	"bytes"
	"fmt"
	"math"
	"net"
	"net/netip"
	"os"
	"sort"
	"strconv"
	"sync"
	"time"

	"sipedge/afxdp/vethtest"
)

// OptionsStats is what the OPTIONS client measured through a proxy: each
// request's time from send to its 200, while the call load ran.
type OptionsStats struct {
	RatePerS float64 `json:"rate_per_s"`
	Sent     int     `json:"sent"`
	Answered int     `json:"answered_200"`
	// Other is answers other than 200 (a 503 from a proxy without a
	// backend, a 483...); Lost is requests with no answer within the
	// timeout (Sent - Answered - Other).
	Other  int     `json:"other_answers"`
	Lost   int     `json:"lost"`
	P50Ms  float64 `json:"p50_ms"`
	P99Ms  float64 `json:"p99_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
}

// optionsTimeout is how long an OPTIONS waits for its answer before it is
// lost (sipp UAS answers at once; a proxy that holds a message this long
// has failed it).
const optionsTimeout = 2 * time.Second

// OptionsClient sends OPTIONS through a proxy at a low fixed rate and
// times each one's 200. Every request has its own Call-ID (so the proxy's
// Call-ID hash spreads them over both backends), a fresh z9hG4bK branch,
// Max-Forwards 70 and a Request-URI with a user part at the proxy
// (sip:options@PROXY), so that the proxy routes it to its dispatcher as it
// does sipp's INVITEs (sip:service@PROXY) instead of answering it itself
// (the appliance's self stage answers only a Request-URI without a user).
type OptionsClient struct {
	c     *net.UDPConn
	to    netip.AddrPort
	local netip.AddrPort
	rate  float64
	tag   string

	mu      sync.Mutex
	pending map[string]time.Time
	rtts    []time.Duration
	other   int
	sent    int

	stop chan struct{}
	done sync.WaitGroup
}

// StartOptions opens a socket on from (inside in's namespace when in is
// not nil) and sends rate OPTIONS a second to proxy until Stop.
func StartOptions(in *vethtest.Pair, from netip.Addr, proxy netip.AddrPort, rate float64) (*OptionsClient, error) {
	if rate <= 0 {
		return nil, fmt.Errorf("harness: OPTIONS rate %v: want above 0", rate)
	}
	c, err := listenUDP(in, netip.AddrPortFrom(from, 0))
	if err != nil {
		return nil, fmt.Errorf("harness: OPTIONS client socket on %s: %w", from, err)
	}
	o := &OptionsClient{c: c, to: proxy, local: c.LocalAddr().(*net.UDPAddr).AddrPort(), rate: rate,
		tag:     strconv.FormatInt(time.Now().UnixNano()%1e12, 36) + "-" + strconv.Itoa(os.Getpid()),
		pending: map[string]time.Time{}, stop: make(chan struct{})}
	o.done.Add(2)
	go o.receive()
	go o.send()
	return o, nil
}

func (o *OptionsClient) send() {
	defer o.done.Done()
	every := time.Duration(float64(time.Second) / o.rate)
	tick := time.NewTicker(every)
	defer tick.Stop()
	var buf []byte
	for n := 1; ; n++ {
		callID := fmt.Sprintf("opt-%s-%d@%s", o.tag, n, o.local.Addr())
		buf = o.request(buf[:0], callID, n)
		o.mu.Lock()
		o.pending[callID] = time.Now()
		o.sent++
		o.mu.Unlock()
		o.c.WriteToUDPAddrPort(buf, o.to)
		select {
		case <-o.stop:
			return
		case <-tick.C:
		}
	}
}

func (o *OptionsClient) request(b []byte, callID string, n int) []byte {
	return fmt.Appendf(b, "OPTIONS sip:options@%s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;branch=z9hG4bK-opt-%s-%d;rport\r\n"+
		"Max-Forwards: 70\r\n"+
		"From: <sip:harness@%s>;tag=opt%d\r\n"+
		"To: <sip:options@%s>\r\n"+
		"Call-ID: %s\r\n"+
		"CSeq: 1 OPTIONS\r\n"+
		"Contact: <sip:harness@%s>\r\n"+
		"Accept: application/sdp\r\n"+
		"Content-Length: 0\r\n\r\n",
		o.to, o.local, o.tag, n, o.local.Addr(), n, o.to, callID, o.local)
}

func (o *OptionsClient) receive() {
	defer o.done.Done()
	buf := make([]byte, 65536)
	for {
		n, _, err := o.c.ReadFromUDPAddrPort(buf)
		at := time.Now()
		if err != nil {
			return // closed by Stop
		}
		msg := buf[:n]
		status, ok := statusCode(msg)
		if !ok || status < 200 { // provisional: wait for the final answer
			continue
		}
		id := headerValue(msg, "Call-ID", "i")
		o.mu.Lock()
		if t0, ok := o.pending[string(id)]; ok {
			delete(o.pending, string(id))
			if rtt := at.Sub(t0); status == 200 && rtt <= optionsTimeout {
				o.rtts = append(o.rtts, rtt)
			} else if status != 200 {
				o.other++
			}
		}
		o.mu.Unlock()
	}
}

// Stop ends sending, waits up to the answer timeout for the last
// answers, and returns the statistics.
func (o *OptionsClient) Stop() OptionsStats {
	close(o.stop)
	deadline := time.Now().Add(optionsTimeout)
	for time.Now().Before(deadline) {
		o.mu.Lock()
		n := len(o.pending)
		o.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	o.c.Close()
	o.done.Wait()
	o.mu.Lock()
	defer o.mu.Unlock()
	return summariseRTTs(o.rate, o.sent, o.other, o.rtts)
}

func summariseRTTs(rate float64, sent, other int, rtts []time.Duration) OptionsStats {
	s := OptionsStats{RatePerS: rate, Sent: sent, Answered: len(rtts), Other: other}
	s.Lost = max(0, sent-len(rtts)-other)
	if len(rtts) == 0 {
		return s
	}
	ms := make([]float64, len(rtts))
	sum := 0.0
	for i, d := range rtts {
		ms[i] = float64(d) / 1e6
		sum += ms[i]
	}
	sort.Float64s(ms)
	s.P50Ms, s.P99Ms, s.MaxMs = percentile(ms, 50), percentile(ms, 99), ms[len(ms)-1]
	s.MeanMs = sum / float64(len(ms))
	return s
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	k := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

// statusCode reads the status of a SIP response ("SIP/2.0 200 OK").
func statusCode(msg []byte) (int, bool) {
	rest, ok := bytes.CutPrefix(msg, []byte("SIP/2.0 "))
	if !ok || len(rest) < 3 {
		return 0, false
	}
	n, err := strconv.Atoi(string(rest[:3]))
	return n, err == nil
}

// headerValue is the trimmed value of the first header named name (or its
// compact form), case-insensitive; nil when absent.
func headerValue(msg []byte, name, compact string) []byte {
	for _, line := range bytes.Split(msg, []byte("\r\n"))[1:] {
		if len(line) == 0 {
			break // end of the headers
		}
		k, v, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			continue
		}
		k = bytes.TrimSpace(k)
		if bytes.EqualFold(k, []byte(name)) || (compact != "" && bytes.EqualFold(k, []byte(compact))) {
			return bytes.TrimSpace(v)
		}
	}
	return nil
}
