package pipeline_test

import (
	"net/netip"
	"testing"

	"sipedge/pipeline"
)

func TestSourceKey(t *testing.T) {
	for _, tc := range []struct {
		in   string
		bits int
		want string
	}{
		{"192.0.2.7", 0, "192.0.2.7"},
		{"::ffff:192.0.2.7", 0, "192.0.2.7"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 0, "2001:db8:1:2::"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 64, "2001:db8:1:2::"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 56, "2001:db8:1::"},
		{"2001:db8:1:2:aaaa:bbbb:cccc:dddd", 128, "2001:db8:1:2:aaaa:bbbb:cccc:dddd"},
	} {
		if got := pipeline.SourceKey(netip.MustParseAddr(tc.in), tc.bits); got != netip.MustParseAddr(tc.want) {
			t.Errorf("SourceKey(%s, %d) = %s, want %s", tc.in, tc.bits, got, tc.want)
		}
	}
	a := netip.MustParseAddr("2001:db8::1")
	if n := testing.AllocsPerRun(100, func() { pipeline.SourceKey(a, 64) }); n != 0 {
		t.Errorf("SourceKey allocates %v times", n)
	}
}
