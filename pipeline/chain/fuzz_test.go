package chain_test

import (
	"io"
	"net/netip"
	"testing"

	"sipedge/pipeline"
	"sipedge/pipeline/chain"
	"sipedge/pipeline/memport"
	"sipedge/pipeline/stages/auth"
	"sipedge/pipeline/stages/guard"
	"sipedge/sipcore"
)

// FuzzWorker runs arbitrary datagrams from arbitrary sources through every
// stage of the chain (guard, sanity, response, self, auth, route): a stage
// that panics is caught by the worker (drop reason panic), so the fuzzer
// looks for exactly that count, and for a frame left in use.
func FuzzWorker(f *testing.F) {
	secret := []byte("fuzz worker cluster secret, 32b.")
	key := sipcore.NewKey(secret)
	bk, err := pipeline.NewBackends([]pipeline.BackendSpec{{Addr: netip.MustParseAddrPort("10.0.0.1:5060"), Weight: 1}})
	if err != nil {
		f.Fatal(err)
	}
	px, err := chain.Proxy(chain.ProxyConfig{Key: &key, SentBy: "192.0.2.1:5060", RecordRoute: "sip:192.0.2.1:5060;lr",
		Names: []string{"192.0.2.1"}, Backends: bk, MaxMessageSize: 2048})
	if err != nil {
		f.Fatal(err)
	}
	huge := guard.Limit{Rate: 1e9, Burst: 1 << 20}
	g, err := guard.New(guard.Config{All: huge, Invite: huge, Register: huge, MaxMessageSize: 2048, OverloadBatches: 1 << 20})
	if err != nil {
		f.Fatal(err)
	}
	var e auth.Entry
	e.SetHA1(sipcore.AlgMD5, []byte(sipcore.HA1(sipcore.AlgMD5, "alice", "example.com", "pw")))
	a, err := auth.New(auth.Config{Realm: "example.com", NonceKey: sipcore.NewNonceKey(secret),
		Store: auth.NewFileStore(auth.Users{"example.com": {"alice": &e}}), FromMustMatch: true})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(a.Close)
	makers, err := chain.Default.Makers(append(px, g, a)...)
	if err != nil {
		f.Fatal(err)
	}
	port := memport.New(64, 4096)
	w, err := pipeline.NewWorker(port, pipeline.Config{Key: &key, Core: -1}, makers)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte("INVITE sip:bob@example.com SIP/2.0\r\nVia: SIP/2.0/UDP 203.0.113.9;branch=z9hG4bK1\r\n"+
		"From: <sip:alice@example.com>;tag=1\r\nTo: <sip:bob@example.com>\r\nCall-ID: c1\r\nCSeq: 1 INVITE\r\n"+
		`Proxy-Authorization: Digest username="alice", realm="example.com", nonce="x", uri="sip:bob@example.com", response="0123456789abcdef0123456789abcdef", qop=auth, nc=00000001, cnonce="c"`+
		"\r\nContent-Length: 0\r\n\r\n"), byte(9))
	f.Add([]byte("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKx\r\n\r\n"), byte(1))
	f.Fuzz(func(t *testing.T, data []byte, src byte) {
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte{203, 0, 113, src}), 5060)
		port.In = append(port.In[:0], memport.Datagram{Payload: append([]byte(nil), data...), Src: from, Dst: netip.MustParseAddrPort("192.0.2.1:5060")})
		for i := 0; i < 4; i++ {
			if _, err := w.Poll(); err != nil && err != io.EOF {
				t.Fatalf("Poll: %v", err)
			}
		}
		port.Sent = port.Sent[:0]
		if n := w.Stats().Drops[pipeline.DropPanic]; n != 0 {
			t.Fatalf("a stage panicked on %q", data)
		}
		if n := port.FramesInUse(); n > 1 {
			t.Fatalf("%d frames in use after %q", n, data)
		}
	})
}
