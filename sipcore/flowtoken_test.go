package sipcore

import (
	"net/netip"
	"testing"
)

func TestFlowToken(t *testing.T) {
	k, other := NewKey([]byte("cluster one secret")), NewKey([]byte("another cluster"))
	for _, s := range []string{"203.0.113.7:40123", "[2001:db8::5]:5060"} {
		a := netip.MustParseAddrPort(s)
		tok := k.AppendFlowToken(nil, a)
		if len(tok) != FlowTokenLen {
			t.Fatalf("token %q has length %d", tok, len(tok))
		}
		if got, ok := k.ParseFlowToken(tok); !ok || got != a {
			t.Fatalf("%s: parsed as %v %v", s, got, ok)
		}
		if _, ok := other.ParseFlowToken(tok); ok {
			t.Fatalf("%s: another cluster's key accepted the token", s)
		}
		tok[5] ^= 1 // a forged address
		if _, ok := k.ParseFlowToken(tok); ok {
			t.Fatalf("%s: forged token accepted", s)
		}
	}
	if _, ok := k.ParseFlowToken([]byte("alice")); ok {
		t.Fatal("a user name parsed as a token")
	}
	a := netip.MustParseAddrPort("203.0.113.7:40123")
	tok := k.AppendFlowToken(nil, a)
	var buf [FlowTokenLen]byte
	if n := testing.AllocsPerRun(100, func() {
		k.AppendFlowToken(buf[:0], a)
		k.ParseFlowToken(tok)
	}); n != 0 {
		t.Fatalf("%v allocations", n)
	}
}
