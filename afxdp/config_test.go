package afxdp

import (
	"net/netip"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	good := DefaultConfig(3, 0)
	if err := good.Validate(); err != nil {
		t.Fatalf("default config rejected: %v", err)
	}
	if good.UmemBytes() > 8<<20 {
		t.Errorf("default UMEM %d bytes does not fit the default 8 MiB memlock limit", good.UmemBytes())
	}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no interface", func(c *Config) { c.Ifindex = 0 }, "interface index"},
		{"negative queue", func(c *Config) { c.Queue = -1 }, "queue"},
		{"odd frame size", func(c *Config) { c.FrameSize = 3000 }, "frame size"},
		{"ring not power of two", func(c *Config) { c.RxRingSize = 1000 }, "rx ring size 1000 is not a power of two"},
		{"zero ring", func(c *Config) { c.FillRingSize = 0 }, "fill ring"},
		{"too few frames", func(c *Config) { c.FrameCount = 1024 }, "less than fill ring"},
		{"too many frames", func(c *Config) { c.FrameCount = MaxFrameCount + 1 }, "out of range"},
		{"small completion ring", func(c *Config) { c.CompRingSize = 256 }, "completion ring"},
		{"bad bind mode", func(c *Config) { c.BindMode = 9 }, "bind mode"},
	} {
		c := good
		tc.edit(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: Validate() = %v, want an error mentioning %q", tc.name, err, tc.want)
		}
	}
}

func TestParseModes(t *testing.T) {
	for in, want := range map[string]XDPMode{"": XDPAuto, "auto": XDPAuto, "native": XDPNative, "DRV": XDPNative, "generic": XDPGeneric, "skb": XDPGeneric} {
		if got, err := ParseXDPMode(in); err != nil || got != want {
			t.Errorf("ParseXDPMode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseXDPMode("offload"); err == nil {
		t.Error("ParseXDPMode accepted offload")
	}
	for in, want := range map[string]BindMode{"": BindAuto, "zerocopy": BindZeroCopy, "copy": BindCopy} {
		if got, err := ParseBindMode(in); err != nil || got != want {
			t.Errorf("ParseBindMode(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	if _, err := ParseBindMode("fast"); err == nil {
		t.Error("ParseBindMode accepted fast")
	}
	if XDPNative.String() != "native" || BindCopy.String() != "copy" {
		t.Error("mode names changed: they appear in logs and config")
	}
}

// TestBanKey: IPv4 is stored v4-mapped (what the program builds from an
// IPv4 header), IPv6 as is, and both decode back to the same address.
func TestBanKey(t *testing.T) {
	k, err := banKey(netip.MustParseAddr("192.0.2.7"), 64)
	if err != nil {
		t.Fatal(err)
	}
	want := [16]byte{10: 0xff, 11: 0xff, 12: 192, 13: 0, 14: 2, 15: 7}
	if k != want {
		t.Errorf("IPv4 key % x, want % x", k, want)
	}
	if a := keyAddr(k); a != netip.MustParseAddr("192.0.2.7") {
		t.Errorf("IPv4 key decodes to %v", a)
	}
	mapped, _ := banKey(netip.MustParseAddr("::ffff:192.0.2.7"), 64)
	if mapped != k {
		t.Error("a v4-mapped IPv6 address must ban the same host as its IPv4 form")
	}
	v6 := netip.MustParseAddr("2001:db8::1")
	k6, _ := banKey(v6, 128)
	if k6 != v6.As16() || keyAddr(k6) != v6 {
		t.Errorf("IPv6 key % x", k6)
	}
	// With a prefix, every address of the /64 is one key: its first
	// address (an IPv4 key is never masked).
	a, _ := banKey(netip.MustParseAddr("2001:db8:0:7::1"), 64)
	b, _ := banKey(netip.MustParseAddr("2001:db8:0:7:ffff:ffff:ffff:fffe"), 64)
	if a != b || keyAddr(a) != netip.MustParseAddr("2001:db8:0:7::") {
		t.Errorf("/64 keys %v and %v, want both 2001:db8:0:7::", keyAddr(a), keyAddr(b))
	}
	if c, _ := banKey(netip.MustParseAddr("2001:db8:0:8::1"), 64); c == a {
		t.Error("the next /64 shares the key")
	}
	if _, err := banKey(netip.Addr{}, 0); err == nil {
		t.Error("the zero address was accepted")
	}
	if _, err := banKey(netip.MustParseAddr("fe80::1%eth0"), 0); err != nil {
		t.Errorf("zoned address: %v", err)
	}
}

func TestSumPerCPU(t *testing.T) {
	if got := sumPerCPU([]uint64{1, 2, 3, 1 << 40}); got != 6+1<<40 {
		t.Errorf("sum = %d", got)
	}
	if sumPerCPU(nil) != 0 {
		t.Error("empty sum not zero")
	}
}

// TestNetworkOrderImmediates: the program compares raw 16-bit loads of
// network-order fields against these constants.
func TestNetworkOrderImmediates(t *testing.T) {
	b := []byte{0x86, 0xdd}
	var loaded uint16
	loaded = uint16(b[0]) | uint16(b[1])<<8 // little-endian load
	if ne16(0x86dd) != int32(loaded) && ne16(0x86dd) != 0x86dd {
		t.Errorf("ne16(0x86dd) = %#x", ne16(0x86dd))
	}
	if ne32([4]byte{0, 0, 0xff, 0xff})&0xffffffff != int64(0xffff0000) && ne32([4]byte{0, 0, 0xff, 0xff}) != 0xffff {
		t.Errorf("ne32 = %#x", ne32([4]byte{0, 0, 0xff, 0xff}))
	}
}
