package dnstest

import (
	"net"
	"strings"
	"sync"
	"testing"

	"github.com/miekg/dns"
)

// Server answers from its records. Every record is given in zone-file
// form ("_sip._udp.example.test. 5 IN SRV 10 60 5080 pbx1.example.test.").
type Server struct {
	// Addr is the server's "127.0.0.1:port".
	Addr string

	srv *dns.Server
	mu  sync.Mutex
	rrs []dns.RR
	// down: queries are read and dropped, as a dead server would.
	down    bool
	queries map[uint16]int
}

// Start runs a server on a free loopback port until the test ends.
func Start(t testing.TB, records ...string) *Server {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Addr: pc.LocalAddr().String(), queries: map[uint16]int{}}
	s.Set(t, records...)
	started := make(chan struct{})
	s.srv = &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(s.serve), NotifyStartedFunc: func() { close(started) }}
	done := make(chan struct{})
	go func() { defer close(done); s.srv.ActivateAndServe() }()
	<-started
	t.Cleanup(func() { s.srv.Shutdown(); <-done })
	return s
}

// Set replaces every record.
func (s *Server) Set(t testing.TB, records ...string) {
	t.Helper()
	rrs := make([]dns.RR, 0, len(records))
	for _, r := range records {
		rr, err := dns.NewRR(r)
		if err != nil {
			t.Fatalf("dnstest: record %q: %v", r, err)
		}
		rrs = append(rrs, rr)
	}
	s.mu.Lock()
	s.rrs = rrs
	s.mu.Unlock()
}

// SetDown takes the server down (true: no answers) or brings it back.
func (s *Server) SetDown(down bool) {
	s.mu.Lock()
	s.down = down
	s.mu.Unlock()
}

// Queries is how many questions of type qtype (dns.TypeSRV...) it got.
func (s *Server) Queries(qtype uint16) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.queries[qtype]
}

// Total is how many questions it got.
func (s *Server) Total() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, c := range s.queries {
		n += c
	}
	return n
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(req.Question) != 1 {
		return
	}
	q := req.Question[0]
	s.queries[q.Qtype]++
	if s.down {
		return
	}
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	known := false
	for _, rr := range s.rrs {
		h := rr.Header()
		if !strings.EqualFold(h.Name, q.Name) {
			continue
		}
		known = true
		if h.Rrtype == q.Qtype || h.Rrtype == dns.TypeCNAME { // an alias answers every type, as in a real zone
			m.Answer = append(m.Answer, dns.Copy(rr))
		}
	}
	if !known {
		m.Rcode = dns.RcodeNameError
	}
	w.WriteMsg(m)
}
