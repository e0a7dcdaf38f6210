package ng

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
	"time"
)

// fakeRelay answers ng requests on loopback as told by answer, which gets
// the request's cookie and dictionary and the number of the datagram.
func fakeRelay(t *testing.T, answer func(n int, cookie, dict []byte, reply func(from *net.UDPConn, b []byte))) netip.AddrPort {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65536)
		for n := 1; ; n++ {
			k, from, err := c.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			b := buf[:k]
			sp := bytes.IndexByte(b, ' ')
			answer(n, b[:sp], b[sp+1:], func(via *net.UDPConn, r []byte) {
				if via == nil {
					via = c
				}
				via.WriteToUDPAddrPort(r, from)
			})
		}
	}()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// The first datagram is lost; the retransmission carries the same cookie
// and bytes; replies with another cookie or from another address are
// skipped; the right one is decoded.
func TestClientRetransmitsAndMatchesCookie(t *testing.T) {
	var first []byte
	stray, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer stray.Close()
	relay := fakeRelay(t, func(n int, cookie, dict []byte, reply func(*net.UDPConn, []byte)) {
		switch n {
		case 1:
			first = append(append([]byte{}, cookie...), dict...)
			return // lost
		case 2:
			if !bytes.Equal(append(append([]byte{}, cookie...), dict...), first) {
				t.Errorf("retransmission differs: %q then %q %q", first, cookie, dict)
			}
			reply(nil, []byte("other-cookie d6:result2:oke"))
			reply(stray, append(append([]byte{}, cookie...), " d6:result4:ponge"...))
			reply(nil, append(append([]byte{}, cookie...), " d6:result4:ponge"...))
		}
	})
	cl, err := NewClient(netip.AddrPort{}, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cl.Retry = 20 * time.Millisecond
	var e Enc
	beginPing(cl, &e)
	d := NewDecoded(16)
	if err := cl.Do(relay, e.B, time.Now().Add(5*time.Second), d); err != nil {
		t.Fatal(err)
	}
	if res, _ := Result(d); string(res) != "pong" {
		t.Errorf("result %q, want pong (the stray replies must be skipped)", res)
	}
	if time.Since(cl.Heard()) > 5*time.Second {
		t.Errorf("Heard %v: the relay's replies were not noted", cl.Heard())
	}
	// A relay that never answers: ErrTimeout at the deadline.
	silent := fakeRelay(t, func(int, []byte, []byte, func(*net.UDPConn, []byte)) {})
	beginPing(cl, &e)
	before := cl.Heard()
	if err := cl.Do(silent, e.B, time.Now().Add(100*time.Millisecond), d); err != ErrTimeout {
		t.Errorf("silent relay: %v, want ErrTimeout", err)
	}
	if cl.Heard() != before {
		t.Error("Heard moved though the relay said nothing")
	}
	// A relay that answers only with another request's cookie (a late
	// reply): the request times out, but the relay was heard.
	late := fakeRelay(t, func(_ int, _ []byte, _ []byte, reply func(*net.UDPConn, []byte)) {
		reply(nil, []byte("earlier-cookie d6:result2:oke"))
	})
	t0 := time.Now()
	beginPing(cl, &e)
	if err := cl.Do(late, e.B, time.Now().Add(100*time.Millisecond), d); err != ErrTimeout {
		t.Errorf("late relay: %v, want ErrTimeout", err)
	}
	if !cl.Heard().After(t0) {
		t.Error("a late reply from the relay was not noted in Heard")
	}
}

// The default client (no local address) reaches an IPv6 relay as well as
// the IPv4 ones above.
func TestClientIPv6(t *testing.T) {
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv6loopback})
	if err != nil {
		t.Skipf("no IPv6 loopback here: %v", err)
	}
	defer c.Close()
	go func() {
		buf := make([]byte, 2048)
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		sp := bytes.IndexByte(buf[:n], ' ')
		c.WriteToUDPAddrPort(append(buf[:sp:sp], " d6:result4:ponge"...), from)
	}()
	cl, err := NewClient(netip.AddrPort{}, "6")
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var e Enc
	beginPing(cl, &e)
	d := NewDecoded(16)
	if err := cl.Do(c.LocalAddr().(*net.UDPAddr).AddrPort(), e.B, time.Now().Add(5*time.Second), d); err != nil {
		t.Fatal(err)
	}
	if res, _ := Result(d); string(res) != "pong" {
		t.Errorf("result %q", res)
	}
}

// beginPing encodes a ping request in e.
func beginPing(cl *Client, e *Enc) {
	cl.Begin(e)
	e.Dict()
	e.KS("command", "ping")
	e.End()
}
