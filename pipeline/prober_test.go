package pipeline_test

import (
	"context"
	"net"
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"sipedge/pipeline"
	"sipedge/sipcore"
)

// fakeBackend answers OPTIONS on loopback with 200 while answering is set.
type fakeBackend struct {
	conn       *net.UDPConn
	answering  atomic.Bool
	received   atomic.Int64 // probes seen
	answered   atomic.Int64
	unanswered atomic.Int64  // probes seen while not answering
	events     chan struct{} // one per answer, dropped when nobody waits
}

func startFakeBackend(t *testing.T) *fakeBackend {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeBackend{conn: conn, events: make(chan struct{}, 16)}
	f.answering.Store(true)
	done := make(chan struct{})
	t.Cleanup(func() { conn.Close(); <-done })
	go func() {
		defer close(done)
		buf := make([]byte, 65535)
		out := make([]byte, 4096)
		var m sipcore.Msg
		for {
			n, src, err := conn.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if sipcore.Parse(buf[:n], &m) != nil || m.Method != sipcore.MethodOPTIONS {
				continue
			}
			f.received.Add(1)
			if !f.answering.Load() {
				f.unanswered.Add(1)
				continue
			}
			k, err := sipcore.BuildResponse(out, &m, 200, "OK", src, &sipcore.ResponseOptions{Key: &otherKey})
			if err == nil {
				// Counted before it is sent: the prober may act on it
				// before this goroutine runs again.
				f.answered.Add(1)
				conn.WriteToUDPAddrPort(out[:k], src)
				select {
				case f.events <- struct{}{}:
				default:
				}
			}
		}
	}()
	return f
}

func (f *fakeBackend) addr() netip.AddrPort { return f.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// await waits, bounded, until the backend's state is up.
func await(t *testing.T, bk *pipeline.Backends, addr netip.AddrPort, up bool) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		s := bk.Load()
		if s.Up(addr) == up {
			return
		}
		select {
		case <-s.Changed():
		case <-deadline:
			t.Fatalf("backend %v never became up=%v", addr, up)
		}
	}
}

func TestProber(t *testing.T) {
	fb := startFakeBackend(t)
	bk := newBackends(t, fb.addr())
	const down, up = 3, 2
	p, err := pipeline.NewProber(bk, pipeline.ProbeConfig{
		Interval: 20 * time.Millisecond, Timeout: 10 * time.Millisecond,
		DownAfter: down, UpAfter: up, Listen: "127.0.0.1:0",
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("prober Run: %v", err)
		}
	}()

	// Answering: probes arrive and the backend stays up.
	first := bk.Load()
	deadline := time.After(10 * time.Second)
	for i := 0; i < down+1; i++ {
		select {
		case <-fb.events:
		case <-deadline:
			t.Fatal("no probes reached the backend")
		}
	}
	if bk.Load() != first || !first.Up(fb.addr()) {
		t.Fatal("the state of an answering backend changed")
	}

	// Each count is read before the switch it measures, so nothing that
	// happens after the switch is missed.
	seen := fb.unanswered.Load()
	fb.answering.Store(false)
	await(t, bk, fb.addr(), false)
	if n := fb.unanswered.Load() - seen; n < down {
		t.Errorf("marked down after %d unanswered probes, want at least %d", n, down)
	}

	ans := fb.answered.Load()
	fb.answering.Store(true)
	await(t, bk, fb.addr(), true)
	if n := fb.answered.Load() - ans; n < up {
		t.Errorf("marked up after %d answers, want at least %d", n, up)
	}
}

func TestProberConfig(t *testing.T) {
	bk := newBackends(t, backendA)
	if _, err := pipeline.NewProber(bk, pipeline.ProbeConfig{Interval: time.Second, Timeout: 2 * time.Second}); err == nil {
		t.Error("a timeout longer than the interval was accepted")
	}
	if _, err := pipeline.NewProber(bk, pipeline.ProbeConfig{Listen: "not an address"}); err == nil {
		t.Error("a bad listen address was accepted")
	}
}
