package guard

import (
	"net/netip"
	"testing"

	"sipedge/pipeline"
)

// A host rotating through the addresses of its IPv6 /64 is one source:
// the second address finds the bucket the first one emptied; another /64
// has its own.
func TestIPv6SourcesCountedPerPrefix(t *testing.T) {
	for _, tc := range []struct {
		prefix   int
		sameNet  pipeline.Verdict // second address of the same /64
		otherNet pipeline.Verdict
	}{
		{0, pipeline.Drop, pipeline.Continue}, // default /64
		{128, pipeline.Continue, pipeline.Continue},
	} {
		g, err := New(Config{OverLimit: Silent, Register: Limit{Rate: 1, Burst: 1}, IPv6Prefix: tc.prefix})
		if err != nil {
			t.Fatal(err)
		}
		s := soloStage(t, g)
		var ctx pipeline.Ctx
		a := netip.AddrPortFrom(netip.MustParseAddr("2001:db8:1:2::1"), 5060)
		b := netip.AddrPortFrom(netip.MustParseAddr("2001:db8:1:2:ffff::9"), 5060)
		o := netip.AddrPortFrom(netip.MustParseAddr("2001:db8:1:3::1"), 5060)
		if v := proc(s, &ctx, register("PBX"), a, 1); v != pipeline.Continue {
			t.Fatalf("prefix %d: first REGISTER: %v", tc.prefix, v)
		}
		if v := proc(s, &ctx, register("PBX"), b, 2); v != tc.sameNet {
			t.Errorf("prefix %d: second address of the /64: %v, want %v", tc.prefix, v, tc.sameNet)
		}
		if v := proc(s, &ctx, register("PBX"), o, 3); v != tc.otherNet {
			t.Errorf("prefix %d: another /64: %v, want %v", tc.prefix, v, tc.otherNet)
		}
	}
}
