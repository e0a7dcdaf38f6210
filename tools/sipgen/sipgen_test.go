package sipgen

import (
	"bytes"
	"crypto/sha256"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sipedge/afxdp/frame"
	"sipedge/sipcore"
)

func mixedConfig(v6 bool) Config {
	c := DefaultConfig()
	if v6 {
		c.IPv6Defaults()
	}
	c.Calls, c.Registers, c.Options = 300, 80, 50
	c.Flood, c.Scan, c.Malformed = 60, 40, 2*numMalformed
	c.Responses, c.Challenges = true, true
	c.CPS = 200
	c.Callers = 50
	return c
}

func digest(t *testing.T, c Config) [32]byte {
	t.Helper()
	g, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	for {
		fr, ts, ok := g.Next()
		if !ok {
			break
		}
		b, _ := ts.MarshalBinary()
		h.Write(b)
		h.Write(fr)
	}
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	var s [32]byte
	copy(s[:], h.Sum(nil))
	return s
}

func TestDeterministic(t *testing.T) {
	c := mixedConfig(false)
	a, b := digest(t, c), digest(t, c)
	if a != b {
		t.Fatal("same seed gave different output")
	}
	c.Seed++
	if digest(t, c) == a {
		t.Fatal("a different seed gave the same output")
	}
}

// walk runs fn on every frame, checking what every frame must satisfy:
// decodable Ethernet/IP/UDP with correct checksums, the payload Payload
// returns, nondecreasing timestamps.
func walk(t *testing.T, c Config, fn func(g *Generator, f *frame.Frame, ts time.Time)) *Generator {
	t.Helper()
	g, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	var last time.Time
	var f frame.Frame
	for {
		fr, ts, ok := g.Next()
		if !ok {
			break
		}
		if ts.Before(last) {
			t.Fatalf("frame %d: timestamp %v before the previous %v", g.Frames(), ts, last)
		}
		last = ts
		if err := frame.Decode(fr, &f); err != nil {
			t.Fatalf("frame %d (%s): %v", g.Frames(), g.Kind(), err)
		}
		if !bytes.Equal(f.Payload, g.Payload()) {
			t.Fatalf("frame %d: Payload differs from the frame's", g.Frames())
		}
		if !f.IPv6 && frame.Checksum(fr[f.L3:f.L4]) != 0 {
			t.Fatalf("frame %d: bad IPv4 header checksum", g.Frames())
		}
		src, dst := f.Src.AsSlice(), f.Dst.AsSlice()
		if frame.UDPChecksum(src, dst, fr[f.L4:f.L4+8+len(f.Payload)]) != 0 {
			t.Fatalf("frame %d: bad UDP checksum", g.Frames())
		}
		fn(g, &f, ts)
	}
	if g.Err() != nil {
		t.Fatal(g.Err())
	}
	return g
}

func TestEveryMessageParses(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		c := mixedConfig(v6)
		var m sipcore.Msg
		var kinds [NumKinds]int
		walk(t, c, func(g *Generator, f *frame.Frame, _ time.Time) {
			kinds[g.Kind()]++
			if f.IPv6 != v6 {
				t.Fatalf("frame %d: IPv6=%v, want %v", g.Frames(), f.IPv6, v6)
			}
			buf := append([]byte(nil), f.Payload...)
			err := sipcore.Parse(buf, &m)
			if g.Kind() == KindMalformed {
				if err == nil {
					t.Fatalf("malformed frame %d parsed:\n%s", g.Frames(), f.Payload)
				}
				return
			}
			if err != nil {
				t.Fatalf("frame %d (%s) does not parse: %v\n%s", g.Frames(), g.Kind(), err, f.Payload)
			}
			if m.IsRequest != (g.Kind() != KindResponse && g.Kind() != KindChallenge) {
				t.Fatalf("frame %d (%s): IsRequest=%v", g.Frames(), g.Kind(), m.IsRequest)
			}
		})
		for k, n := range kinds {
			if n == 0 {
				t.Errorf("ipv6=%v: no frame of kind %s", v6, Kind(k))
			}
		}
	}
}

func TestDigestRetriesVerify(t *testing.T) {
	c := mixedConfig(false)
	g0, _ := New(c)
	var users bytes.Buffer
	if err := g0.WriteUsers(&users); err != nil {
		t.Fatal(err)
	}
	list, err := ReadUsers(&users)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != c.Callers {
		t.Fatalf("users file has %d users, want %d", len(list), c.Callers)
	}
	byName := map[string]User{}
	for _, u := range list {
		byName[u.Name] = u
	}
	nk := sipcore.NewNonceKey([]byte(c.Secret))
	var m sipcore.Msg
	var cr sipcore.Credentials
	verified, floodTried, floodPassed := 0, 0, 0
	algs := map[sipcore.Algorithm]int{}
	walk(t, c, func(g *Generator, f *frame.Frame, ts time.Time) {
		if g.Kind() != KindRegister && g.Kind() != KindFlood {
			return
		}
		buf := append([]byte(nil), f.Payload...)
		if err := sipcore.Parse(buf, &m); err != nil {
			t.Fatal(err)
		}
		if m.Authorization < 0 {
			return
		}
		if err := sipcore.ParseCredentials(m.B(m.Headers[m.Authorization].Value), &cr); err != nil {
			t.Fatalf("frame %d: %v", g.Frames(), err)
		}
		u, known := byName[string(cr.Username)]
		ha1 := u.HA1MD5
		if cr.Algorithm == sipcore.AlgSHA256 {
			ha1 = u.HA1SHA
		}
		ok := known && string(cr.Realm) == u.Realm && cr.Verify([]byte("REGISTER"), []byte(ha1))
		if g.Kind() == KindFlood {
			floodTried++
			if ok {
				floodPassed++
			}
			return
		}
		if !ok {
			t.Fatalf("frame %d: authenticated REGISTER does not verify against the users file:\n%s", g.Frames(), f.Payload)
		}
		if r := nk.Check(cr.Nonce, cr.Realm, sipcore.NonceBinding{Src: f.Src, CallID: m.B(m.CallID)}, ts, time.Minute); r != sipcore.NonceValid {
			t.Fatalf("frame %d: nonce is %v at the retry's time", g.Frames(), r)
		}
		algs[cr.Algorithm]++
		verified++
	})
	if verified != c.Registers {
		t.Fatalf("%d authenticated REGISTERs verified, want %d", verified, c.Registers)
	}
	if algs[sipcore.AlgMD5] == 0 || algs[sipcore.AlgSHA256] == 0 {
		t.Fatalf("algorithms used: %v; want both MD5 and SHA-256", algs)
	}
	if floodTried == 0 || floodPassed != 0 {
		t.Fatalf("flood: %d credentials tried, %d passed; want some tried and none passing", floodTried, floodPassed)
	}
}

// TestResponsesAreTheProxys checks the proxy model: every backend response
// is addressed to the proxy and carries a top Via the appliance recognises
// (same secret), and forwarding it leads back to the caller.
func TestResponsesAreTheProxys(t *testing.T) {
	c := mixedConfig(false)
	key := sipcore.NewKey([]byte(c.Secret))
	var m sipcore.Msg
	var hop sipcore.NextHop
	out := make([]byte, sipcore.MaxMessageSize)
	tags := map[string]string{} // Call-ID -> To-tag of the final response
	n := 0
	walk(t, c, func(g *Generator, f *frame.Frame, _ time.Time) {
		buf := append([]byte(nil), f.Payload...)
		if g.Kind() == KindMalformed || sipcore.Parse(buf, &m) != nil {
			return
		}
		cid := string(m.B(m.CallID))
		switch g.Kind() {
		case KindResponse:
			n++
			if f.DstAddrPort() != c.Proxy || f.SrcAddrPort() != c.Backend {
				t.Fatalf("response %v -> %v, want backend -> proxy", f.SrcAddrPort(), f.DstAddrPort())
			}
			if _, err := sipcore.BuildResponseForward(out, &m, &key, &hop); err != nil {
				t.Fatalf("frame %d: the appliance would not forward it: %v\n%s", g.Frames(), err, f.Payload)
			}
			if !hop.Addr.Addr().IsValid() || hop.Addr.Addr().Unmap() == c.Proxy.Addr() {
				t.Fatalf("frame %d: next hop %v is not a caller", g.Frames(), hop.Addr)
			}
			if m.StatusCode >= 200 && m.CSeqMethod == sipcore.MethodINVITE {
				tags[cid] = string(m.B(m.To.Tag))
			}
		case KindCall:
			if f.DstAddrPort() != c.Proxy {
				t.Fatalf("request to %v, want the proxy %v", f.DstAddrPort(), c.Proxy)
			}
			if m.Method == sipcore.MethodACK || m.Method == sipcore.MethodBYE {
				if want := tags[cid]; want == "" || string(m.B(m.To.Tag)) != want {
					t.Fatalf("frame %d: %s To-tag %q, the final response's was %q", g.Frames(), m.B(m.MethodSpan), m.B(m.To.Tag), want)
				}
			}
		}
	})
	if n == 0 {
		t.Fatal("no response generated")
	}
}

func TestMixProportions(t *testing.T) {
	c := mixedConfig(false)
	c.Responses, c.Challenges = false, false
	if err := c.ApplyMix(2000, "calls=50,registers=20,options=10,flood=12,scan=6,malformed=2"); err != nil {
		t.Fatal(err)
	}
	if c.Calls != 1000 || c.Registers != 400 || c.Options != 200 || c.Flood != 240 || c.Scan != 120 || c.Malformed != 40 {
		t.Fatalf("mix gave %+v", c)
	}
	var kinds [NumKinds]int
	floodSrc, scanSrc := map[netip.Addr]bool{}, map[netip.Addr]bool{}
	var m sipcore.Msg
	walk(t, c, func(g *Generator, f *frame.Frame, _ time.Time) {
		kinds[g.Kind()]++
		switch g.Kind() {
		case KindFlood:
			floodSrc[f.Src] = true
		case KindScan:
			scanSrc[f.Src] = true
			buf := append([]byte(nil), f.Payload...)
			if err := sipcore.Parse(buf, &m); err != nil || m.UserAgent < 0 {
				t.Fatalf("scan frame without User-Agent: %v", err)
			}
			ua := string(m.B(m.Headers[m.UserAgent].Value))
			found := false
			for _, s := range scannerAgents {
				found = found || ua == s
			}
			if !found {
				t.Fatalf("scan User-Agent %q is not a scanner's", ua)
			}
		}
	})
	if kinds[KindFlood] != c.Flood || kinds[KindScan] != c.Scan || kinds[KindMalformed] != c.Malformed ||
		kinds[KindOptions] != c.Options || kinds[KindRegister] != 2*c.Registers {
		t.Fatalf("frames by kind %v for %+v", kinds, c)
	}
	// A call is INVITE ACK BYE, or INVITE CANCEL ACK when cancelled.
	if kinds[KindCall] != 3*c.Calls {
		t.Fatalf("%d call frames, want %d", kinds[KindCall], 3*c.Calls)
	}
	if len(floodSrc) != c.FloodSources || len(scanSrc) != c.ScanSources {
		t.Fatalf("flood from %d sources, scans from %d; want %d and %d", len(floodSrc), len(scanSrc), c.FloodSources, c.ScanSources)
	}
	for a := range floodSrc {
		if scanSrc[a] {
			t.Fatalf("%v both floods and scans", a)
		}
	}
}

func TestMaxFramesAndBoundedFlows(t *testing.T) {
	c := DefaultConfig()
	c.Calls, c.Registers, c.Options = 20000, 0, 0
	c.CPS, c.Hold = 2000, time.Second
	c.Responses = true
	c.MaxFrames = 50000
	g, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	peak := 0
	for {
		if _, _, ok := g.Next(); !ok {
			break
		}
		peak = max(peak, len(g.active))
	}
	if g.Frames() != c.MaxFrames {
		t.Fatalf("%d frames, want the cap %d", g.Frames(), c.MaxFrames)
	}
	// Open calls last at most ring (4.3 s) + 1.5 x hold: about 11,600 at
	// 2,000 calls/s. The bound is what keeps memory flat for any count.
	if limit := int(c.CPS * 6.5); peak > limit {
		t.Fatalf("%d flows open at once, want at most %d", peak, limit)
	}
}

func TestUsersFileErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a b c\n", "line 1: 3 fields"},
		{"# c\n\nu r 123 " + strings.Repeat("a", 64) + "\n", "line 3: HA1-MD5"},
		{"u r " + strings.Repeat("a", 32) + " xyz\n", "line 1: HA1-SHA-256"},
	} {
		_, err := ReadUsers(strings.NewReader(tc.in))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ReadUsers(%q) = %v, want an error containing %q", tc.in, err, tc.want)
		}
	}
}

func TestConfigErrors(t *testing.T) {
	c := DefaultConfig()
	c.Secret = "short"
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "--secret") {
		t.Fatalf("short secret: %v", err)
	}
	c = DefaultConfig()
	c.Proxy = netip.MustParseAddrPort("[2001:db8::1]:5060")
	if _, err := New(c); err == nil || !strings.Contains(err.Error(), "family") {
		t.Fatalf("mixed families: %v", err)
	}
	c = DefaultConfig()
	if err := c.ApplyMix(10, "calls=1,bogus=2"); err == nil || !strings.Contains(err.Error(), "bogus") {
		t.Fatalf("bad mix: %v", err)
	}
}

func BenchmarkGenerate(b *testing.B) {
	c := mixedConfig(false)
	c.Calls, c.Registers, c.Options = 1<<30, 1<<28, 1<<28
	c.MaxFrames = uint64(b.N)
	g, err := New(c)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	bytes := 0
	for {
		fr, _, ok := g.Next()
		if !ok {
			break
		}
		bytes += len(fr)
	}
	if g.Err() != nil {
		b.Fatal(g.Err())
	}
	b.SetBytes(int64(bytes / max(b.N, 1)))
}
