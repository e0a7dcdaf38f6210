package pipeline

import (
	"context"
	"net"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/sipcore"
)

// A read error that is not the timeout (here the ICMP port unreachable of
// a backend that is gone, reported on the socket with IP_RECVERR) is
// counted and probing goes on: the live backend keeps being probed.
func TestProberSurvivesReadErrors(t *testing.T) {
	live, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer live.Close()
	go func() {
		buf, out := make([]byte, 65535), make([]byte, 4096)
		var m sipcore.Msg
		key := sipcore.NewKey([]byte("prober internal test secret 32b."))
		for {
			n, src, err := live.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if sipcore.Parse(buf[:n], &m) == nil && m.Method == sipcore.MethodOPTIONS {
				if k, err := sipcore.BuildResponse(out, &m, 200, "OK", src, &sipcore.ResponseOptions{Key: &key}); err == nil {
					live.WriteToUDPAddrPort(out[:k], src)
				}
			}
		}
	}()
	gone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	goneAddr := gone.LocalAddr().(*net.UDPAddr).AddrPort()
	gone.Close() // nothing listens there: ICMP port unreachable
	liveAddr := live.LocalAddr().(*net.UDPAddr).AddrPort()
	bk, err := NewBackends([]BackendSpec{{Addr: goneAddr, Weight: 1}, {Addr: liveAddr, Weight: 1}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewProber(bk, ProbeConfig{Interval: 50 * time.Millisecond, Timeout: 40 * time.Millisecond, Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	rc, err := p.conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	rc.Control(func(fd uintptr) { err = unix.SetsockoptInt(int(fd), unix.IPPROTO_IP, unix.IP_RECVERR, 1) })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	oks := func() uint64 {
		for _, s := range bk.Status() {
			if s.Addr == liveAddr {
				return s.ProbesOK
			}
		}
		return 0
	}
	for end := time.Now().Add(10 * time.Second); oks() < 5 || p.Errors() == 0; {
		select {
		case err := <-done:
			t.Fatalf("the prober stopped after %d answered probes: %v", oks(), err)
		default:
		}
		if time.Now().After(end) {
			t.Fatalf("after 10s: %d answered probes of the live backend, %d socket errors; want 5 and some", oks(), p.Errors())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
