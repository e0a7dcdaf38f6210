package sipcore

import (
	"net/netip"
	"testing"
)

func TestParseIP(t *testing.T) {
	good := []string{
		"192.0.2.1", "0.0.0.0", "255.255.255.255",
		"2001:db8::1", "::", "::1", "1::", "2001:db8:0:0:0:0:0:1",
		"fe80::1:2:3:4", "::ffff:192.0.2.2", "2001:db8::192.0.2.1", "1:2:3:4:5:6:7:8",
		"1:2:3:4:5:6:1.2.3.4", "[2001:db8::9:255]",
	}
	for _, s := range good {
		got, ok := ParseIP([]byte(s))
		u := s
		if u[0] == '[' {
			u = u[1 : len(u)-1]
		}
		want := netip.MustParseAddr(u)
		if !ok || got != want {
			t.Errorf("ParseIP(%q) = %v, %v; want %v", s, got, ok, want)
		}
	}
	bad := []string{
		"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.a", "example.com",
		"2001:db8:::1", ":1", "1:", "1:2:3:4:5:6:7:8:9", "1::2::3", "12345::", "1:2:3:4:5:6:7:8::",
		"::1.2.3", "[::1", "g::1",
	}
	for _, s := range bad {
		if a, ok := ParseIP([]byte(s)); ok {
			t.Errorf("ParseIP(%q) = %v, want failure", s, a)
		}
	}
	b := []byte("2001:db8::9:255")
	if n := testing.AllocsPerRun(100, func() { ParseIP(b) }); n != 0 {
		t.Errorf("ParseIP allocates %v times", n)
	}
}
