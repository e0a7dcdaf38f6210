package socketport

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"sipedge/pipeline/port"
)

func open(t testing.TB, cfg Config) *Port {
	t.Helper()
	p, err := Open(cfg)
	if err != nil {
		if cfg.Listen.Addr().Is6() && os.Getenv("CI") != "true" {
			t.Skipf("IPv6 loopback not usable here (%v); CI=true makes this a failure", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// echo serves n datagrams on p, replying to each with its payload prefixed
// by "re:", and returns the first error.
func echo(p *Port, n int, sizes chan<- int) error {
	rx := make([]port.Packet, 16)
	tx := make([]port.Packet, 16)
	for done, rounds := 0, 0; done < n; rounds++ {
		if rounds > 1000 {
			return fmt.Errorf("echo: only %d of %d datagrams after 1000 polls", done, n)
		}
		k, err := port.ReceiveWait(p, rx, testWait)
		if err != nil {
			return err
		}
		if sizes != nil && k > 0 {
			sizes <- k
		}
		m := p.Alloc(tx[:k])
		for i := range m {
			tx[i].Payload = append(append(tx[i].Payload, "re:"...), rx[i].Payload...)
			tx[i].Dst = rx[i].Src
			tx[i].Src = rx[i].Dst
		}
		if _, err := p.Transmit(tx[:m]); err != nil {
			return err
		}
		p.Release(rx[:k])
		done += k
	}
	return nil
}

func testEcho(t *testing.T, listen string) {
	p := open(t, Config{Listen: netip.MustParseAddrPort(listen)})
	const n = 50
	errc := make(chan error, 1)
	go func() { errc <- echo(p, n, nil) }()
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 2048)
	for i := range n {
		msg := fmt.Sprintf("OPTIONS sip:%d@example.com SIP/2.0\r\n\r\n", i)
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		k, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reply %d: %v", i, err)
		}
		if got := string(buf[:k]); got != "re:"+msg {
			t.Fatalf("reply %d = %q", i, got)
		}
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Received != n || s.Sent != n || s.Unsent != 0 {
		t.Fatalf("stats %+v, want %d received and sent", s, n)
	}
}

func TestEchoIPv4(t *testing.T) { testEcho(t, "127.0.0.1:0") }
func TestEchoIPv6(t *testing.T) { testEcho(t, "[::1]:0") }

// TestBatch checks that one Receive takes many datagrams in one recvmmsg:
// loopback delivers synchronously, so all are queued before the first call.
func TestBatch(t *testing.T) {
	p := open(t, Config{Listen: netip.MustParseAddrPort("127.0.0.1:0"), Batch: 32, RecvBuffer: 4 << 20})
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(p.LocalAddr()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 200
	for i := range n {
		if _, err := fmt.Fprintf(c, "msg %03d", i); err != nil {
			t.Fatal(err)
		}
	}
	rx := make([]port.Packet, 64)
	got := 0
	for rounds := 0; got < n && rounds < 100; rounds++ {
		k, err := port.ReceiveWait(p, rx, testWait)
		if err != nil {
			t.Fatal(err)
		}
		if rounds == 0 && k != 32 {
			t.Fatalf("first Receive got %d datagrams, want a full batch of 32", k)
		}
		for i := range k {
			if want := fmt.Sprintf("msg %03d", got+i); string(rx[i].Payload) != want {
				t.Fatalf("datagram %d = %q, want %q (order or content lost)", got+i, rx[i].Payload, want)
			}
			if rx[i].Src != c.LocalAddr().(*net.UDPAddr).AddrPort() || rx[i].Dst != p.LocalAddr() {
				t.Fatalf("addresses %v -> %v", rx[i].Src, rx[i].Dst)
			}
		}
		p.Release(rx[:k])
		got += k
	}
	if got != n {
		t.Fatalf("received %d of %d", got, n)
	}
}

// TestReusePort opens two ports on one address and sends from many source
// ports: the kernel hashes flows over both sockets.
func TestReusePort(t *testing.T) {
	a := open(t, Config{Listen: netip.MustParseAddrPort("127.0.0.1:0")})
	b := open(t, Config{Listen: a.LocalAddr()})
	const senders = 40
	for i := range senders {
		c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(a.LocalAddr()))
		if err != nil {
			t.Fatal(err)
		}
		_, err = fmt.Fprintf(c, "from %d", i)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	rx := make([]port.Packet, 64)
	count := func(p *Port) int {
		total := 0
		for {
			k, err := port.ReceiveWait(p, rx, testWait)
			if err != nil {
				t.Fatal(err)
			}
			if k == 0 {
				return total
			}
			p.Release(rx[:k])
			total += k
		}
	}
	na, nb := count(a), count(b)
	if na == 0 || nb == 0 || na+nb != senders {
		t.Fatalf("SO_REUSEPORT spread: %d + %d datagrams, want both > 0 and %d in all", na, nb, senders)
	}
}

// testWait bounds each wait of the tests for a datagram already on its way
// (ReceiveWait returns as soon as it arrives).
const testWait = 2 * time.Second

func TestCloseUnblocksReceive(t *testing.T) {
	p := open(t, Config{Listen: netip.MustParseAddrPort("127.0.0.1:0")})
	errc := make(chan error, 1)
	go func() {
		rx := make([]port.Packet, 8)
		_, err := port.ReceiveWait(p, rx, time.Hour)
		errc <- err
	}()
	// Close may come before or during the Receive: both must end it.
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, port.ErrClosed) {
			t.Fatalf("Receive after Close = %v, want port.ErrClosed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Receive still blocked 10s after Close")
	}
	if _, err := p.Transmit(nil); !errors.Is(err, port.ErrClosed) {
		t.Fatalf("Transmit after Close = %v", err)
	}
}

func TestIdleReceiveReturnsZero(t *testing.T) {
	p := open(t, Config{Listen: netip.MustParseAddrPort("127.0.0.1:0")})
	rx := make([]port.Packet, 8)
	for range 3 {
		if k, err := port.ReceiveWait(p, rx, 10*time.Millisecond); k != 0 || err != nil {
			t.Fatalf("idle Receive = %d, %v; want 0, nil", k, err)
		}
	}
}

// TestWildcardPktinfo binds 0.0.0.0 and checks that a request to 127.0.0.2
// is seen as such and answered from it.
func TestWildcardPktinfo(t *testing.T) {
	p := open(t, Config{Listen: netip.MustParseAddrPort("0.0.0.0:0")})
	c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	for _, to := range []string{"127.0.0.2", "127.0.0.3"} {
		dst := netip.AddrPortFrom(netip.MustParseAddr(to), p.LocalAddr().Port())
		if _, err := c.WriteToUDPAddrPort([]byte("ping"), dst); err != nil {
			t.Fatal(err)
		}
		errc := make(chan error, 1)
		go func() { errc <- echo(p, 1, nil) }()
		buf := make([]byte, 64)
		k, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			t.Fatal(err)
		}
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		if string(buf[:k]) != "re:ping" || from != dst {
			t.Fatalf("reply %q from %v, want re:ping from %v", buf[:k], from, dst)
		}
	}
}

// TestWildcardPktinfoIPv6 runs the IPV6_PKTINFO path on [::]: Dst is the
// address the request came to and the reply leaves from it.
func TestWildcardPktinfoIPv6(t *testing.T) {
	p := open(t, Config{Listen: netip.MustParseAddrPort("[::]:0")})
	dst := netip.AddrPortFrom(netip.IPv6Loopback(), p.LocalAddr().Port())
	c, err := net.DialUDP("udp6", nil, net.UDPAddrFromAddrPort(dst))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("ping6")); err != nil {
		t.Fatal(err)
	}
	rx := make([]port.Packet, 4)
	var n int
	for range 100 {
		if n, err = port.ReceiveWait(p, rx, testWait); n > 0 || err != nil {
			break
		}
	}
	if n != 1 || err != nil || rx[0].Dst != dst || string(rx[0].Payload) != "ping6" {
		t.Fatalf("Receive = %d, %v, dst %v; want ping6 to %v", n, err, rx[0].Dst, dst)
	}
	tx := make([]port.Packet, 1)
	p.Alloc(tx)
	tx[0].Payload = append(tx[0].Payload, "pong6"...)
	tx[0].Dst, tx[0].Src = rx[0].Src, rx[0].Dst
	p.Release(rx[:1])
	if k, err := p.Transmit(tx); k != 1 || err != nil {
		t.Fatalf("Transmit = %d, %v", k, err)
	}
	buf := make([]byte, 16)
	k, err := c.Read(buf) // a connected socket only accepts it from dst
	if err != nil || string(buf[:k]) != "pong6" {
		t.Fatalf("reply %q, %v", buf[:k], err)
	}
}

func TestTransmitCountsUnsent(t *testing.T) {
	p := open(t, Config{Listen: netip.MustParseAddrPort("127.0.0.1:0"), Buffers: 4})
	tx := make([]port.Packet, 4)
	if n := p.Alloc(tx); n != 4 {
		t.Fatalf("Alloc = %d, want 4", n)
	}
	if n := p.Alloc(make([]port.Packet, 1)); n != 0 {
		t.Fatalf("Alloc from an empty pool = %d, want 0", n)
	}
	tx[0].Dst = netip.MustParseAddrPort("[::1]:5060") // wrong family
	tx[1].Dst = netip.AddrPort{}                      // none
	tx[2].Dst = p.LocalAddr()
	tx[3].Dst = p.LocalAddr()
	tx[2].Payload = append(tx[2].Payload, 'x')
	tx[3].Payload = tx[3].Payload[:2048] // full buffer, still sendable
	n, err := p.Transmit(tx)
	if err != nil || n != 2 {
		t.Fatalf("Transmit = %d, %v; want 2, nil", n, err)
	}
	if s := p.Stats(); s.Unsent != 2 || s.Sent != 2 {
		t.Fatalf("stats %+v, want 2 sent, 2 unsent", s)
	}
	// Every buffer came back, and a double give-back is refused and counted.
	if n := p.Alloc(make([]port.Packet, 4)); n != 4 {
		t.Fatalf("pool after Transmit holds %d buffers, want 4", n)
	}
	p.Release(tx[:1])
	p.Release([]port.Packet{{Handle: 99}})
	p.Release([]port.Packet{{}}) // a zero Packet frees nothing
	if s := p.Stats(); s.BadHandle != 2 {
		t.Fatalf("BadHandle = %d, want 2", s.BadHandle)
	}
	rx := make([]port.Packet, 4)
	k, _ := port.ReceiveWait(p, rx, testWait)
	if k != 1 || !bytes.Equal(rx[0].Payload, []byte("x")) {
		t.Fatalf("Receive = %d %q, want the 1-byte datagram (the 2048-byte one fills... only with 4 buffers)", k, rx[0].Payload)
	}
}

// pair gives two ports that talk to each other over loopback.
func pair(t testing.TB) (*Port, *Port) {
	a := open(t, Config{Listen: netip.MustParseAddrPort("127.0.0.1:0"), RecvBuffer: 4 << 20})
	b := open(t, Config{Listen: netip.MustParseAddrPort("127.0.0.1:0"), RecvBuffer: 4 << 20})
	return a, b
}

// roundTrip sends len(tx) datagrams a -> b, echoes them b -> a and receives
// them on a. It panics rather than fail so that it can run in AllocsPerRun.
func roundTrip(a, b *Port, rx, tx []port.Packet, payload []byte) {
	n := a.Alloc(tx)
	for i := range n {
		tx[i].Payload = append(tx[i].Payload, payload...)
		tx[i].Dst = b.LocalAddr()
	}
	if s, err := a.Transmit(tx[:n]); err != nil || s != n {
		panic(fmt.Sprintf("a transmit %d/%d: %v", s, n, err))
	}
	for got := 0; got < n; {
		k, err := port.ReceiveWait(b, rx, testWait)
		if err != nil || k == 0 {
			panic(fmt.Sprintf("b receive: %d, %v", k, err))
		}
		m := b.Alloc(tx[:k])
		for i := range m {
			tx[i].Payload = append(tx[i].Payload, rx[i].Payload...)
			tx[i].Dst = rx[i].Src
		}
		b.Release(rx[:k])
		if s, err := b.Transmit(tx[:m]); err != nil || s != m {
			panic(fmt.Sprintf("b transmit %d/%d: %v", s, m, err))
		}
		got += k
	}
	for got := 0; got < n; {
		k, err := port.ReceiveWait(a, rx, testWait)
		if err != nil || k == 0 {
			panic(fmt.Sprintf("a receive: %d, %v", k, err))
		}
		a.Release(rx[:k])
		got += k
	}
}

func TestZeroAllocs(t *testing.T) {
	a, b := pair(t)
	rx := make([]port.Packet, 64)
	tx := make([]port.Packet, 64)
	payload := bytes.Repeat([]byte("s"), 600)
	roundTrip(a, b, rx, tx, payload) // warm-up: deadlines, netpoller registration
	allocs := testing.AllocsPerRun(200, func() { roundTrip(a, b, rx, tx, payload) })
	if allocs != 0 {
		t.Fatalf("receive+transmit round trip of 64 datagrams allocates %v times, want 0", allocs)
	}
}

// BenchmarkLoopbackEcho measures one datagram's trip a -> b -> a over
// loopback in batches of 64: two sendmmsg and two recvmmsg calls per batch,
// on one goroutine (ns/packet is the CPU cost of the whole round trip).
func BenchmarkLoopbackEcho(b *testing.B) {
	pa, pb := pair(b)
	rx := make([]port.Packet, 64)
	tx := make([]port.Packet, 64)
	payload := bytes.Repeat([]byte("s"), 600)
	b.ReportAllocs()
	start := time.Now()
	n := 0
	for b.Loop() {
		roundTrip(pa, pb, rx, tx, payload)
		n += 64
	}
	el := time.Since(start)
	b.ReportMetric(float64(el.Nanoseconds())/float64(n), "ns/packet")
	b.ReportMetric(float64(n)/el.Seconds(), "packets/s")
}
