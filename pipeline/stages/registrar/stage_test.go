package registrar_test

import (
	"net/netip"
	"testing"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/stages/registrar"
	"sipedge/pipeline/stages/registrar/bindings"
	"sipedge/sipcore"
)

const reg = "REGISTER sip:example.com SIP/2.0\r\n" +
	"Via: SIP/2.0/UDP 198.51.100.7:5060;branch=z9hG4bKr1\r\nMax-Forwards: 70\r\n" +
	"From: <sip:alice@example.com>;tag=1\r\nTo: <sip:alice@example.com>\r\nCall-ID: r1\r\nCSeq: 2 REGISTER\r\n" +
	"Authorization: Digest username=\"alice\", realm=\"example.com\", nonce=\"abc\", uri=\"sip:example.com\", response=\"00000000000000000000000000000000\"\r\n" +
	"Contact: <sip:alice@198.51.100.7:5060>;expires=600;+sip.instance=\"<urn:uuid:1>\";reg-id=1\r\nContent-Length: 0\r\n\r\n"

// solo is the registrar stage alone (its helper is started but, in a
// Solo, nothing is parked: Process's verdict is the test's).
func solo(tb testing.TB) (*pipeline.Solo, *pipeline.Ctx) {
	r, err := registrar.New(registrar.Config{Domains: bindings.NewDomains([]string{"example.com"}), DefaultExpires: time.Hour,
		MinExpires: time.Minute, MaxExpires: 2 * time.Hour, Store: bindings.NewMemory(), Workers: 1, Realm: "example.com",
		Self: netip.MustParseAddrPort("192.0.2.1:5060")})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(r.Close)
	s, err := pipeline.NewSolo(0, r)
	if err != nil {
		tb.Fatal(err)
	}
	var m sipcore.Msg
	buf := []byte(reg)
	if err := sipcore.Parse(buf, &m); err != nil {
		tb.Fatal(err)
	}
	return s, &pipeline.Ctx{Buf: buf, Msg: &m, Parsed: true, Src: netip.MustParseAddrPort("198.51.100.7:5060")}
}

// The worker's share of a REGISTER (every check, then the park) allocates
// nothing: the helper does the rest off the hot path.
func TestProcessAllocs(t *testing.T) {
	s, c := solo(t)
	if v := s.Process(c); v != pipeline.Park {
		t.Fatalf("verdict %v, want park", v)
	}
	if n := testing.AllocsPerRun(200, func() { s.Process(c) }); n != 0 {
		t.Fatalf("%v allocations per REGISTER", n)
	}
}

// BenchmarkProcess is the worker's cost of a REGISTER up to the park:
// Contact, Expires and To checks, the credentials' user against To's.
func BenchmarkProcess(b *testing.B) {
	s, c := solo(b)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s.Process(c)
	}
}
