package pipeline

import (
	"fmt"
	"math"
	"net/netip"
	"testing"
)

// share counts which backend n Call-IDs pick.
func share(s *BackendSet, n int) map[netip.AddrPort]int {
	out := map[netip.AddrPort]int{}
	for i := 0; i < n; i++ {
		k := s.Pick(fmt.Appendf(nil, "call-%d@203.0.113.9", i))
		if k >= 0 {
			out[s.Backends[k].Addr]++
		}
	}
	return out
}

// Priorities are standby sets: the set of priority 20 gets no call while
// one backend of priority 10 is up, gets them all when both are down, and
// gives them back when one returns; within a priority the weights hold
// over 10,000 Call-IDs (3:1 within 10% of each share).
func TestPickPriorityAndWeights(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:5080")
	b := netip.MustParseAddrPort("127.0.0.1:5081")
	c := netip.MustParseAddrPort("127.0.0.1:5082")
	d := netip.MustParseAddrPort("127.0.0.1:5083")
	bk, err := NewBackends([]BackendSpec{
		{Addr: c, Weight: 50, Priority: 20},
		{Addr: a, Weight: 3, Priority: 10},
		{Addr: d, Weight: 1, Priority: 20},
		{Addr: b, Weight: 1, Priority: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	within := func(got map[netip.AddrPort]int, want map[netip.AddrPort]float64) {
		t.Helper()
		for addr, w := range want {
			if f := float64(got[addr]) / n; math.Abs(f-w) > 0.1*w {
				t.Errorf("%v got %.3f of the calls, want %.3f (within 10%%): %v", addr, f, w, got)
			}
		}
		if len(got) != len(want) {
			t.Errorf("calls went to %v, want only %v", got, want)
		}
	}
	within(share(bk.Load(), n), map[netip.AddrPort]float64{a: 0.75, b: 0.25})
	bk.SetUp(a, false)
	within(share(bk.Load(), n), map[netip.AddrPort]float64{b: 1})
	bk.SetUp(b, false)
	within(share(bk.Load(), n), map[netip.AddrPort]float64{c: 50.0 / 51, d: 1.0 / 51})
	bk.SetUp(a, true)
	within(share(bk.Load(), n), map[netip.AddrPort]float64{a: 1})
	bk.SetUp(b, true)
	within(share(bk.Load(), n), map[netip.AddrPort]float64{a: 0.75, b: 0.25})
}

// Every message of a call keeps its backend when a standby set comes and
// goes: only the calls of a backend that goes down move.
func TestPickStableAcrossStandbyChanges(t *testing.T) {
	a := netip.MustParseAddrPort("127.0.0.1:5080")
	b := netip.MustParseAddrPort("127.0.0.1:5081")
	c := netip.MustParseAddrPort("127.0.0.1:5082")
	bk, _ := NewBackends([]BackendSpec{{Addr: a, Weight: 1, Priority: 1}, {Addr: b, Weight: 1, Priority: 1}})
	before := bk.Load()
	bk.Replace([]BackendSpec{{Addr: a, Weight: 1, Priority: 1}, {Addr: b, Weight: 1, Priority: 1}, {Addr: c, Weight: 100, Priority: 2}})
	after := bk.Load()
	for i := 0; i < 1000; i++ {
		id := fmt.Appendf(nil, "stable-%d", i)
		if x, y := before.Backends[before.Pick(id)].Addr, after.Backends[after.Pick(id)].Addr; x != y {
			t.Fatalf("call %s moved from %v to %v when a standby backend was added", id, x, y)
		}
	}
}

func TestPickWithPrioritiesAllocatesNothing(t *testing.T) {
	bk, _ := NewBackends([]BackendSpec{
		{Addr: netip.MustParseAddrPort("127.0.0.1:5080"), Weight: 1, Priority: 2},
		{Addr: netip.MustParseAddrPort("127.0.0.1:5081"), Weight: 1, Priority: 1},
	})
	s := bk.Load()
	id := []byte("alloc-check@example")
	if n := testing.AllocsPerRun(1000, func() { s.Pick(id) }); n != 0 {
		t.Errorf("Pick allocates %v times per call", n)
	}
}

// Two nodes given the same records in another order pick the same backend
// for every Call-ID: the scores depend on the address, not the position.
func TestPickSameOnEveryNode(t *testing.T) {
	specs := []BackendSpec{
		{Addr: netip.MustParseAddrPort("10.0.0.1:5060"), Weight: 60, Priority: 10},
		{Addr: netip.MustParseAddrPort("10.0.0.2:5060"), Weight: 40, Priority: 10},
		{Addr: netip.MustParseAddrPort("10.0.0.3:5060"), Weight: 1, Priority: 20},
	}
	a, _ := NewBackends(specs)
	b, _ := NewBackends([]BackendSpec{specs[2], specs[1], specs[0]})
	sa, sb := a.Load(), b.Load()
	for i := 0; i < 10000; i++ {
		id := fmt.Appendf(nil, "node-%d", i)
		if x, y := sa.Backends[sa.Pick(id)].Addr, sb.Backends[sb.Pick(id)].Addr; x != y {
			t.Fatalf("Call-ID %s: one node picks %v, the other %v", id, x, y)
		}
	}
}
