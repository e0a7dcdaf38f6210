package neigh

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// privileged skips outside CI when the test cannot create namespaces, and
// fails in CI, where it must run.
func privileged(t *testing.T) {
	t.Helper()
	why := ""
	if os.Geteuid() != 0 {
		why = "needs root (CAP_NET_ADMIN) to create network namespaces and veth pairs"
	} else if _, err := exec.LookPath("ip"); err != nil {
		why = "needs the ip command (Debian package iproute2)"
	}
	if why == "" {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("CI=true: %s", why)
	}
	t.Skip(why)
}

func run(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// testNet is two fresh network namespaces joined by a veth pair: "us"
// (10.77.0.1, fd77::1) and "peer" (10.77.0.2, fd77::2), with routes in us to
// 203.0.113.0/24 and 2001:db8:77::/48 through the peer. The addresses are
// private to the namespaces, so parallel tests and the host never see them.
type testNet struct {
	us, peer string
	peerMAC  [6]byte
}

func newTestNet(t *testing.T) *testNet {
	privileged(t)
	var r [3]byte
	rand.Read(r[:])
	id := hex.EncodeToString(r[:])
	n := &testNet{us: "sipedge-nu-" + id, peer: "sipedge-np-" + id}
	run(t, "netns", "add", n.us)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.us).Run() })
	run(t, "netns", "add", n.peer)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.peer).Run() })
	a, b := "nu"+id, "np"+id // 8 characters: within IFNAMSIZ
	run(t, "-n", n.us, "link", "add", a, "type", "veth", "peer", "name", b, "netns", n.peer)
	run(t, "-n", n.us, "addr", "add", "10.77.0.1/24", "dev", a)
	run(t, "-n", n.us, "addr", "add", "fd77::1/64", "dev", a, "nodad")
	run(t, "-n", n.peer, "addr", "add", "10.77.0.2/24", "dev", b)
	run(t, "-n", n.peer, "addr", "add", "fd77::2/64", "dev", b, "nodad")
	run(t, "-n", n.us, "link", "set", a, "up")
	run(t, "-n", n.peer, "link", "set", b, "up")
	run(t, "-n", n.us, "route", "add", "203.0.113.0/24", "via", "10.77.0.2")
	run(t, "-n", n.us, "-6", "route", "add", "2001:db8:77::/48", "via", "fd77::2")
	out := run(t, "-n", n.peer, "-o", "link", "show", b)
	i := strings.Index(out, "link/ether ")
	if i < 0 {
		t.Fatalf("no MAC in %q", out)
	}
	hw, err := net.ParseMAC(strings.Fields(out[i+len("link/ether "):])[0])
	if err != nil {
		t.Fatal(err)
	}
	n.peerMAC = [6]byte(hw)
	return n
}

// inNetns runs fn on a thread that has entered namespace ns. The thread is
// never unlocked, so Go discards it when fn returns instead of reusing it
// in the wrong namespace.
func inNetns(t *testing.T, ns string, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// await calls cond after each refresh until it holds or 10s pass.
func await(tb *Table, cond func() bool) bool {
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-tb.Refreshed():
		case <-deadline:
			return false
		}
	}
	return true
}

// kick sends one datagram through the kernel, which resolves the next hop
// (ARP or ND) on the way, as the port's slow path does on a miss.
func kick(dst string) error {
	c, err := net.Dial("udp", net.JoinHostPort(dst, "9"))
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Write([]byte("x"))
	return err
}

func TestLookupResolvesThroughKernel(t *testing.T) {
	n := newTestNet(t)
	inNetns(t, n.us, withTable(func(tb *Table) error {
		for _, tc := range []struct{ dst, kick string }{
			{"10.77.0.2", "10.77.0.2"},           // directly connected
			{"fd77::2", "fd77::2"},               // IPv6, neighbour discovery
			{"203.0.113.7", "203.0.113.7"},       // behind the gateway 10.77.0.2
			{"2001:db8:77::9", "2001:db8:77::9"}, // behind the gateway fd77::2
		} {
			dst := netip.MustParseAddr(tc.dst)
			if _, ok := tb.Lookup(dst); ok && tc.dst == "10.77.0.2" {
				return fmt.Errorf("%s resolved before any traffic went to it", dst)
			}
			if err := kick(tc.kick); err != nil {
				return err
			}
			var mac [6]byte
			if !await(tb, func() bool { m, ok := tb.Lookup(dst); mac = m; return ok }) {
				return fmt.Errorf("%s: no MAC 10s after the kernel sent to it; stats %+v", dst, tb.Stats())
			}
			if mac != n.peerMAC {
				return fmt.Errorf("%s: MAC %x, want the peer's %x", dst, mac, n.peerMAC)
			}
		}
		// Nobody answers ARP for .99: it stays a miss (and a local
		// address has no next hop at all).
		for _, a := range []string{"10.77.0.99", "10.77.0.1"} {
			dst := netip.MustParseAddr(a)
			kick(a)
			tb.Lookup(dst)
			before := tb.Stats().Refreshes
			if !await(tb, func() bool { return tb.Stats().Refreshes >= before+3 }) {
				return fmt.Errorf("refresher stalled: %+v", tb.Stats())
			}
			if mac, ok := tb.Lookup(dst); ok {
				return fmt.Errorf("%s resolved to %x; nothing should answer for it", dst, mac)
			}
		}
		if s := tb.Stats(); s.Entries != 4 || s.Errors != 0 {
			return fmt.Errorf("stats %+v, want 4 entries and no errors", s)
		}
		return nil
	}))
}

func TestLookupZeroAllocs(t *testing.T) {
	tb, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Stop()
	hit := netip.MustParseAddr("192.0.2.1")
	m := map[netip.Addr]hop{hit: {mac: [6]byte{1, 2, 3, 4, 5, 6}}}
	tb.snap.Store(&m)
	miss := netip.MustParseAddr("2001:db8::1")
	allocs := testing.AllocsPerRun(1000, func() {
		if mac, ok := tb.Lookup(hit); !ok || mac[0] != 1 {
			panic("hit missed")
		}
		if _, ok := tb.Lookup(miss); ok {
			panic("miss hit")
		}
		if _, ok := tb.Firm(hit); ok {
			panic("a stale entry taken for a firm one")
		}
	})
	if allocs != 0 {
		t.Fatalf("Lookup allocates %v times, want 0", allocs)
	}
	// The miss queue is bounded: 1000 misses above queued at most
	// MissQueue requests and never blocked.
	if len(tb.misses) != cap(tb.misses) {
		t.Fatalf("miss queue holds %d of %d", len(tb.misses), cap(tb.misses))
	}
}

// TestBounded checks MaxEntries: misses beyond it evict the least recently
// asked destinations, at most maxEvictions per round, then count overflow.
func TestBounded(t *testing.T) {
	tb, err := New(Config{MaxEntries: 8, MissQueue: 200})
	if err != nil {
		t.Fatal(err)
	}
	defer tb.Stop()
	for i := range 100 {
		tb.Lookup(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
	}
	if err := tb.Refresh(); err != nil {
		t.Fatal(err)
	}
	s := tb.Stats()
	if s.Wanted != 8 || s.Overflow != 100-8-maxEvictions {
		t.Fatalf("stats %+v: want 8 tracked and %d overflowed", s, 100-8-maxEvictions)
	}
}

func BenchmarkLookupHit(b *testing.B) {
	tb, err := New(Config{})
	if err != nil {
		b.Skip(err)
	}
	defer tb.Stop()
	m := map[netip.Addr]hop{}
	for i := range 256 {
		m[netip.AddrFrom4([4]byte{192, 0, 2, byte(i)})] = hop{mac: [6]byte{byte(i)}}
	}
	tb.snap.Store(&m)
	dst := netip.MustParseAddr("192.0.2.77")
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := tb.Lookup(dst); !ok {
			b.Fatal("miss")
		}
	}
}

// TestFirm: a permanent kernel entry is firm, a stale one is not (a MAC
// learnt from frames may stand in for it); OutInterface names the
// interface a destination is routed through.
func TestFirm(t *testing.T) {
	n := newTestNet(t)
	dev := "nu" + strings.TrimPrefix(n.us, "sipedge-nu-")
	run(t, "-n", n.us, "neigh", "replace", "10.77.0.50", "lladdr", "02:00:00:00:00:50", "dev", dev, "nud", "permanent")
	run(t, "-n", n.us, "neigh", "replace", "10.77.0.51", "lladdr", "02:00:00:00:00:51", "dev", dev, "nud", "stale")
	inNetns(t, n.us, withTable(func(tb *Table) error {
		perm, stale := netip.MustParseAddr("10.77.0.50"), netip.MustParseAddr("10.77.0.51")
		if !await(tb, func() bool { _, a := tb.Lookup(perm); _, b := tb.Lookup(stale); return a && b }) {
			return fmt.Errorf("the static entries never showed: %+v", tb.Stats())
		}
		if mac, ok := tb.Firm(perm); !ok || mac != [6]byte{2, 0, 0, 0, 0, 0x50} {
			return fmt.Errorf("permanent entry: Firm = %x, %v; want its MAC, true", mac, ok)
		}
		if _, ok := tb.Firm(stale); ok {
			return fmt.Errorf("a stale entry is firm")
		}
		oif, err := OutInterface(perm)
		if err != nil {
			return err
		}
		ifi, err := net.InterfaceByName(dev)
		if err != nil {
			return err
		}
		if oif != ifi.Index {
			return fmt.Errorf("OutInterface(%v) = %d, want %s's %d", perm, oif, dev, ifi.Index)
		}
		return nil
	}))
}

// withTable runs fn with a started table of the calling namespace,
// refreshed every 20 ms.
func withTable(fn func(tb *Table) error) func() error {
	return func() error {
		tb, err := New(Config{Interval: 20 * time.Millisecond})
		if err != nil {
			return err
		}
		tb.Start()
		defer tb.Stop()
		return fn(tb)
	}
}
