package mediatest

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"sipedge/pipeline/stages/media/ng"
)

// Relay is one rtpengine started by a test.
type Relay struct {
	// NG is its ng control address; PortMin..PortMax its media ports.
	NG netip.AddrPort
	// Media is the address of its media ports.
	Media            netip.Addr
	PortMin, PortMax int
	cmd              *exec.Cmd
	done             chan struct{}
	log              string
	t                testing.TB
}

var ranges atomic.Int64

// Require fails (CI=true) or skips the test when rtpengine is absent.
func Require(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("rtpengine")
	if err == nil {
		return p
	}
	msg := "this test needs rtpengine: apt-get install rtpengine-daemon (or make test-deps)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// freeUDP returns a loopback UDP port free right now.
func freeUDP(t testing.TB) netip.AddrPort {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort()
}

// Start starts an rtpengine on loopback with delete-delay 0 (a deleted
// call is gone at once) and waits until it answers ping. It is stopped by
// its pid when the test ends.
func Start(t testing.TB) *Relay {
	t.Helper()
	return StartOn(t, netip.MustParseAddr("127.0.0.1"))
}

// StartOn is Start with the relay's media on ip (its ng socket stays on
// loopback): a relay on the same box as an XDP program, on the address
// of the interface the program is attached to.
func StartOn(t testing.TB, ip netip.Addr) *Relay {
	t.Helper()
	bin := Require(t)
	// A media range per relay: the pid and a counter spread concurrent
	// test processes (other engineers' included) over 20000-59999.
	n := ranges.Add(1)
	base := 20000 + int((int64(os.Getpid())*7919+n*613)%390)*100
	r := &Relay{NG: freeUDP(t), Media: ip, PortMin: base, PortMax: base + 99, done: make(chan struct{}), t: t}
	dir := t.TempDir()
	r.log = filepath.Join(dir, "rtpengine.log")
	lf, err := os.Create(r.log)
	if err != nil {
		t.Fatal(err)
	}
	r.cmd = exec.Command(bin, "--config-file=none", "--table=-1", "--interface="+ip.String(),
		"--listen-ng="+r.NG.String(), "--port-min="+strconv.Itoa(r.PortMin), "--port-max="+strconv.Itoa(r.PortMax),
		"--delete-delay=0", "--foreground", "--log-stderr", "--log-level=5", "--pidfile="+filepath.Join(dir, "pid"))
	r.cmd.Stdout, r.cmd.Stderr = lf, lf
	r.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := r.cmd.Start(); err != nil {
		lf.Close()
		t.Fatalf("rtpengine: %v", err)
	}
	go func() { r.cmd.Wait(); lf.Close(); close(r.done) }()
	t.Cleanup(r.Kill)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, err := r.Do(map[string]any{"command": "ping"}); err == nil {
			return r
		}
		select {
		case <-r.done:
			t.Fatalf("rtpengine exited at start:\n%s", r.Log())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("rtpengine did not answer ping on %v within 10s:\n%s", r.NG, r.Log())
		}
	}
}

// Kill stops the relay (SIGKILL: a relay that dies) and waits for it.
func (r *Relay) Kill() {
	if r.cmd.Process == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGKILL)
	<-r.done
}

// Log returns what the relay logged.
func (r *Relay) Log() string {
	b, _ := os.ReadFile(r.log)
	return string(b)
}

// Do sends one ng command (a dictionary of strings, ints and lists of
// strings) and returns the reply decoded.
func (r *Relay) Do(req map[string]any) (*ng.Decoded, error) {
	cl, err := ng.NewClient(netip.AddrPort{}, "t")
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	var e ng.Enc
	cl.Begin(&e)
	e.Dict()
	for k, v := range req {
		switch v := v.(type) {
		case string:
			e.KS(k, v)
		case int:
			e.Str(k)
			e.Int(int64(v))
		case []string:
			e.KL(k, v)
		default:
			return nil, fmt.Errorf("mediatest: value %T", v)
		}
	}
	e.End()
	d := ng.NewDecoded(1 << 16)
	if err := cl.Do(r.NG, e.B, time.Now().Add(time.Second), d); err != nil {
		return nil, err
	}
	return d, nil
}

// Calls lists the Call-IDs the relay holds.
func (r *Relay) Calls() ([]string, error) {
	d, err := r.Do(map[string]any{"command": "list", "limit": 100000})
	if err != nil {
		return nil, err
	}
	if res, reason := ng.Result(d); string(res) != "ok" {
		return nil, fmt.Errorf("list: %s %s", res, reason)
	}
	var out []string
	d.Elems(d.Get(0, "calls"), func(i int) bool {
		out = append(out, string(d.Bytes(i)))
		return true
	})
	return out, nil
}

// Packets sums the RTP packets the relay forwarded for callID over all
// its streams (query's totals), or an error when it does not know it.
func (r *Relay) Packets(callID string) (int64, error) {
	d, err := r.Do(map[string]any{"command": "query", "call-id": callID})
	if err != nil {
		return 0, err
	}
	if res, reason := ng.Result(d); string(res) != "ok" {
		return 0, fmt.Errorf("query %s: %s %s", callID, res, reason)
	}
	tot := d.Get(0, "totals")
	rtp := d.Get(tot, "RTP")
	return d.Int(d.Get(rtp, "packets")), nil
}
