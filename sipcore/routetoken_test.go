package sipcore

import (
	"net/netip"
	"strings"
	"testing"
)

// The Record-Route token binds the Call-ID and the caller's observed
// address: the backend's in-dialog request that carries it back yields
// that address; another Call-ID, another key or a changed byte does not.
func TestRouteToken(t *testing.T) {
	o := *testForward
	o.RouteToken = true
	for _, src := range []netip.AddrPort{testSrc, netip.MustParseAddrPort("[2001:db8::9]:5062")} {
		out := make([]byte, 4096)
		n, err := BuildForward(out, mustParseStr(t, simpleInvite), &o, src, nil)
		if err != nil {
			t.Fatal(err)
		}
		fwd := mustParseStr(t, string(out[:n]))
		if fwd.NRecordRoute != 1 || fwd.ParseAddress(&fwd.RecordRoutes[0]) != nil {
			t.Fatalf("no Record-Route:\n%s", out[:n])
		}
		rr := string(fwd.B(fwd.RecordRoutes[0].URI.Raw))
		if !strings.HasPrefix(rr, "sip:192.0.2.1:5060;lr;se-rt=") {
			t.Fatalf("Record-Route %q, want ours with the token", rr)
		}
		// The backend's BYE routes through the recorded URI.
		bye := func(route, callID string) *Msg {
			return mustParseStr(t, "BYE sip:alice@pc33.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKb1\r\n"+
				"Route: <"+route+">\r\nFrom: <sip:bob@example.com>;tag=b\r\nTo: <sip:alice@example.com>;tag=a\r\n"+
				"Call-ID: "+callID+"\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
		}
		m := bye(rr, "a84b4c76e66710@pc33.example.com")
		if a, res := testKey.RouteTarget(m, &m.Routes[0].URI); res != RouteTokenOK || a != src {
			t.Errorf("token of %v: %v %v, want OK and the caller", src, a, res)
		}
		m = bye(rr, "another-call")
		if _, res := testKey.RouteTarget(m, &m.Routes[0].URI); res != RouteTokenBad {
			t.Errorf("token on another Call-ID: %v, want bad", res)
		}
		other := NewKey([]byte("another cluster's secret........"))
		m = bye(rr, "a84b4c76e66710@pc33.example.com")
		if _, res := other.RouteTarget(m, &m.Routes[0].URI); res != RouteTokenBad {
			t.Errorf("token under another key: %v, want bad", res)
		}
		// Re-aimed at another address with the MAC kept.
		i := strings.Index(rr, "se-rt=") + len("se-rt=")
		moved := rr[:i] + "c6336407" + rr[i+8:]
		if src.Addr().Is6() {
			moved = rr[:i] + "3001" + rr[i+4:]
		}
		m = bye(moved, "a84b4c76e66710@pc33.example.com")
		if _, res := testKey.RouteTarget(m, &m.Routes[0].URI); res != RouteTokenBad {
			t.Errorf("re-aimed token %q: %v, want bad", moved, res)
		}
	}
	m := mustParseStr(t, "BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb1\r\nRoute: <sip:192.0.2.1;lr>\r\n"+
		"From: <sip:b@e>;tag=b\r\nTo: <sip:a@e>;tag=a\r\nCall-ID: x\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
	if _, res := testKey.RouteTarget(m, &m.Routes[0].URI); res != RouteTokenMissing {
		t.Errorf("no token: %v, want missing", res)
	}
}

func TestCallHashKeyed(t *testing.T) {
	other := NewKey([]byte("another cluster's secret........"))
	same := 0
	for i := 0; i < 64; i++ {
		id := []byte(strings.Repeat("x", i) + "@host")
		if testKey.CallHash(id) != testKey.CallHash(id) {
			t.Fatal("CallHash is not stable")
		}
		if testKey.CallHash(id) == other.CallHash(id) {
			same++
		}
	}
	if same != 0 {
		t.Errorf("%d of 64 Call-IDs hash the same under two keys", same)
	}
}

func TestRouteTokenAllocatesNothing(t *testing.T) {
	o := *testForward
	o.RouteToken = true
	in := mustParseStr(t, simpleInvite)
	out := make([]byte, 4096)
	n, err := BuildForward(out, in, &o, testSrc, nil)
	if err != nil {
		t.Fatal(err)
	}
	fwd := mustParseStr(t, string(out[:n]))
	fwd.ParseAddress(&fwd.RecordRoutes[0])
	rr := string(fwd.B(fwd.RecordRoutes[0].URI.Raw))
	bye := []byte("BYE sip:alice@pc33.example.com SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bKb1\r\n" +
		"Route: <" + rr + ">\r\nFrom: <sip:bob@example.com>;tag=b\r\nTo: <sip:alice@example.com>;tag=a\r\n" +
		"Call-ID: a84b4c76e66710@pc33.example.com\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n")
	var m Msg
	if a := testing.AllocsPerRun(200, func() {
		if _, err := BuildForward(out, in, &o, testSrc, nil); err != nil {
			t.Fatal(err)
		}
		if err := Parse(bye, &m); err != nil {
			t.Fatal(err)
		}
		if _, res := testKey.RouteTarget(&m, &m.Routes[0].URI); res != RouteTokenOK {
			t.Fatal(res)
		}
		testKey.CallHash(m.B(m.CallID))
	}); a != 0 {
		t.Errorf("token build, check and Call-ID hash: %v allocs", a)
	}
}

// FuzzRouteTarget: a Route from the wire, whatever its token, never
// panics and never verifies without our MAC; a forwarded request's
// Record-Route built from any source verifies for that source.
func FuzzRouteTarget(f *testing.F) {
	f.Add("sip:192.0.2.1:5060;lr;se-rt=cb007109-9c41-0123456789abcdef", "call-1", []byte{203, 0, 113, 9}, uint16(40001))
	f.Add("sip:192.0.2.1;se-rt=;lr", "x", []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}, uint16(5060))
	f.Add("sip:192.0.2.1;se-rt=20010db8000000000000000000000009-13c6-b81fc8431000ec68", "", []byte{1, 2, 3}, uint16(0))
	f.Fuzz(func(t *testing.T, route, callID string, ip []byte, port uint16) {
		if strings.ContainsAny(route+callID, "\r\n<>") || callID == "" {
			return
		}
		bye := "BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bKb1\r\nRoute: <" + route + ">\r\n" +
			"From: <sip:b@e>;tag=b\r\nTo: <sip:a@e>;tag=a\r\nCall-ID: " + callID + "\r\nCSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"
		var m Msg
		if Parse([]byte(bye), &m) == nil && m.NRoute > 0 {
			// Only the token we would write for this Call-ID verifies.
			if a, res := testKey.RouteTarget(&m, &m.Routes[0].URI); res == RouteTokenOK {
				var tok [maxRouteToken]byte
				n := testKey.putRouteToken(tok[:], m.B(m.CallID), a)
				if !strings.Contains(strings.ToLower(route), string(tok[:n])) {
					t.Fatalf("%q verified to %v without our token %s", route, a, tok[:n])
				}
			}
		}
		src, ok := netip.AddrFromSlice(ip)
		if !ok || port == 0 {
			return
		}
		inv := strings.Replace(simpleInvite, "a84b4c76e66710@pc33.example.com", callID, 1)
		var in Msg
		if Parse([]byte(inv), &in) != nil {
			return
		}
		o := *testForward
		o.RouteToken = true
		out := make([]byte, 4096)
		n, err := BuildForward(out, &in, &o, netip.AddrPortFrom(src, port), nil)
		if err != nil {
			return
		}
		var fwd Msg
		if err := Parse(out[:n], &fwd); err != nil || fwd.NRecordRoute == 0 || fwd.ParseAddress(&fwd.RecordRoutes[0]) != nil {
			t.Fatalf("forwarded request unparsable or without Record-Route: %v\n%s", err, out[:n])
		}
		rr := string(fwd.B(fwd.RecordRoutes[0].URI.Raw))
		b2 := strings.Replace(bye, "Route: <"+route+">", "Route: <"+rr+">", 1)
		b2 = strings.Replace(b2, "Call-ID: "+callID, "Call-ID: "+string(in.B(in.CallID)), 1)
		var m2 Msg
		if err := Parse([]byte(b2), &m2); err != nil {
			return
		}
		if a, res := testKey.RouteTarget(&m2, &m2.Routes[0].URI); res != RouteTokenOK || a != netip.AddrPortFrom(src.Unmap(), port) {
			t.Fatalf("own token of %v: %v %v\n%s", netip.AddrPortFrom(src, port), a, res, b2)
		}
	})
}
