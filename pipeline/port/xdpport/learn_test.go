package xdpport

import (
	"encoding/binary"
	"net/netip"
	"testing"
	"time"
	"unsafe"
)

func addrN(i uint32) netip.Addr {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], 0x0a000000|i&0xffffff)
	if i>>24 != 0 {
		// Past 2^24, IPv6 sources so that every i is distinct.
		var b6 [16]byte
		b6[0], b6[1] = 0x20, 0x01
		binary.BigEndian.PutUint32(b6[12:], i)
		return netip.AddrFrom16(b6)
	}
	return netip.AddrFrom4(b)
}

func macN(i uint32) [6]byte {
	return [6]byte{0x02, 0, byte(i >> 24), byte(i >> 16), byte(i >> 8), byte(i)}
}

// lookupMAC is what prepare does with the table for a datagram without HW.
func lookupMAC(t *learnTable, a netip.Addr, now int64) ([6]byte, bool) {
	k, _ := learnKey(a)
	e := t.find(&k, now)
	if e == nil || !e.hasMAC || now-e.seen >= t.ttl {
		return [6]byte{}, false
	}
	return e.mac, true
}

// TestLearnTableBounded: a million distinct sources leave the table at its
// fixed size, every live entry accounted for, the most recent sources
// still found, and one peer that keeps sending survives the flood.
func TestLearnTableBounded(t *testing.T) {
	tb := newLearnTable(4096, time.Hour)
	if len(tb.slots) != 4096 {
		t.Fatalf("table of %d slots, want 4096", len(tb.slots))
	}
	peer := netip.MustParseAddr("192.0.2.7")
	pmac := [6]byte{0x02, 0xaa, 0, 0, 0, 1}
	now := int64(1)
	const flood = 1_000_000
	for i := uint32(0); i < flood; i++ {
		now++
		tb.observe(addrN(i), macN(i), now)
		if i%64 == 0 {
			tb.observe(peer, pmac, now)
		}
	}
	if len(tb.slots) != 4096 || cap(tb.slots) != 4096 {
		t.Fatalf("table grew to %d slots", len(tb.slots))
	}
	if n := tb.occupied(now); n > 4096 || n < 4096*3/4 {
		t.Fatalf("%d live entries after %d sources in 4096 slots", n, flood)
	}
	if mac, ok := lookupMAC(tb, peer, now); !ok || mac != pmac {
		t.Fatalf("the peer sending every 64 frames was evicted by the flood: %x %v", mac, ok)
	}
	// The newest source is always placed (its window holds older ones).
	if mac, ok := lookupMAC(tb, addrN(flood-1), now); !ok || mac != macN(flood-1) {
		t.Fatalf("the newest source is not found: %x %v", mac, ok)
	}
	found := 0
	for i := uint32(flood - 1000); i < flood; i++ {
		if _, ok := lookupMAC(tb, addrN(i), now); ok {
			found++
		}
	}
	if found < 900 {
		t.Fatalf("only %d of the last 1000 sources found", found)
	}
}

// TestLearnTableExpiryAndMove: an entry is used within its TTL and not
// after; a peer that moves to a new MAC is followed at its next frame.
func TestLearnTableExpiryAndMove(t *testing.T) {
	ttl := 5 * time.Minute
	tb := newLearnTable(16, ttl)
	a := netip.MustParseAddr("2001:db8::5")
	m1, m2 := [6]byte{0x02, 0, 0, 0, 0, 1}, [6]byte{0x02, 0, 0, 0, 0, 2}
	t0 := int64(time.Second)
	tb.observe(a, m1, t0)
	if mac, ok := lookupMAC(tb, a, t0+int64(ttl)-1); !ok || mac != m1 {
		t.Fatalf("just within the TTL: %x %v, want %x", mac, ok, m1)
	}
	if _, ok := lookupMAC(tb, a, t0+int64(ttl)); ok {
		t.Fatal("an entry is still used at its TTL")
	}
	tb.observe(a, m1, t0+int64(ttl)+1)
	tb.observe(a, m2, t0+int64(ttl)+2)
	if mac, ok := lookupMAC(tb, a, t0+int64(ttl)+3); !ok || mac != m2 {
		t.Fatalf("moved peer: %x %v, want the newest MAC %x", mac, ok, m2)
	}
	// The IPv4 address and its v4-mapped form are one key; a v4-mapped
	// source (never valid on the wire) is not learnt.
	v4 := netip.MustParseAddr("198.51.100.1")
	tb.observe(netip.AddrFrom16(v4.As16()), m1, t0)
	if _, ok := lookupMAC(tb, v4, t0); ok {
		t.Fatal("a v4-mapped IPv6 source was learnt")
	}
	for _, bad := range []struct {
		a   string
		mac [6]byte
	}{{"0.0.0.0", m1}, {"224.0.0.1", m1}, {"127.0.0.1", m1}, {"255.255.255.255", m1}, {"198.51.100.2", [6]byte{0x03}}, {"198.51.100.3", [6]byte{}}} {
		tb.observe(netip.MustParseAddr(bad.a), bad.mac, t0)
		if _, ok := lookupMAC(tb, netip.MustParseAddr(bad.a), t0); ok {
			t.Errorf("learnt %s from %x", bad.a, bad.mac)
		}
	}
	tb.observe(v4, m2, t0)
	if mac, ok := lookupMAC(tb, netip.AddrFrom16(v4.As16()), t0); !ok || mac != m2 {
		t.Fatalf("lookup by the v4-mapped form: %x %v", mac, ok)
	}
}

// TestLearnTablePendingKept: a destination holding back a slow-path
// datagram is the last choice for replacement, and its mark lapses after
// slowHold.
func TestLearnTablePendingKept(t *testing.T) {
	tb := newLearnTable(8, time.Hour) // one window: every key competes
	now := int64(1)
	k, _ := learnKey(netip.MustParseAddr("192.0.2.99"))
	e := tb.slot(&k, now)
	e.pending, e.slowAt = true, now
	for i := uint32(0); i < 100; i++ {
		now++
		tb.observe(addrN(i), macN(i), now)
	}
	if e := tb.find(&k, now); e == nil || !e.pending {
		t.Fatal("a pending destination was replaced while others could be")
	}
	if e := tb.find(&k, 1+slowHold); e != nil {
		t.Fatalf("the slow-path mark outlived slowHold: %+v", *e)
	}
	if s := unsafe.Sizeof(learnEntry{}); s != 40 {
		t.Errorf("learnEntry is %d bytes; the window's cache-line count in learn.go assumes 40", s)
	}
}

func TestLearnTableZeroAllocs(t *testing.T) {
	tb := newLearnTable(4096, time.Minute)
	i := uint32(0)
	allocs := testing.AllocsPerRun(1000, func() {
		i++
		tb.observe(addrN(i), macN(i), int64(i))
		lookupMAC(tb, addrN(i-1), int64(i))
	})
	if allocs != 0 {
		t.Fatalf("observe+lookup allocates %.1f times", allocs)
	}
}

// BenchmarkLearnObserve: learning one received frame's source, from a few
// known peers (the steady state: the key is found and refreshed) and from a
// working set twice the table (a flood: every frame replaces an entry).
func BenchmarkLearnObserve(b *testing.B) {
	for _, bc := range []struct {
		name string
		set  int
	}{{"known", 256}, {"flood", 8192}} {
		b.Run(bc.name, func(b *testing.B) {
			tb := newLearnTable(4096, time.Minute)
			addrs := make([]netip.Addr, bc.set)
			for i := range addrs {
				addrs[i] = addrN(uint32(i))
			}
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				tb.observe(addrs[i%bc.set], macN(uint32(i)), int64(i+1))
			}
		})
	}
}

// BenchmarkLearnLookup: prepare's lookup of a learnt destination.
func BenchmarkLearnLookup(b *testing.B) {
	tb := newLearnTable(4096, time.Minute)
	addrs := make([]netip.Addr, 2048)
	for i := range addrs {
		addrs[i] = addrN(uint32(i))
		tb.observe(addrs[i], macN(uint32(i)), 1)
	}
	b.ReportAllocs()
	hits := 0
	for i := 0; i < b.N; i++ {
		if _, ok := lookupMAC(tb, addrs[i&2047], 2); ok {
			hits++
		}
	}
	if hits == 0 && b.N > 0 {
		b.Fatal("no hits")
	}
}
