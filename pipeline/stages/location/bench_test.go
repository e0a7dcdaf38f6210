package location_test

import (
	"strings"
	"testing"
	"time"

	"sipedge/pipeline/memport"
	"sipedge/pipeline/port"
	"sipedge/pipeline/stages/registrar/bindings"
)

// BenchmarkLocationCall is the whole chain (sanity, response, self,
// registrar, location, route) on one core for INVITEs to a registered AOR
// whose location is cached: the cost of one call's INVITE through an edge
// with the location role, from parse to the forwarded copy. calls/s is
// per core.
func BenchmarkLocationCall(b *testing.B) {
	benchCalls(b, invite("ivy"))
}

// BenchmarkDispatchCall is the same chain and INVITE for another domain:
// the dispatcher (route) forwards it, the location stage only looks at
// the Request-URI. The difference to BenchmarkLocationCall is what the
// location role costs a call.
func BenchmarkDispatchCall(b *testing.B) {
	benchCalls(b, strings.ReplaceAll(invite("ivy"), "@example.com", "@example.net"))
}

func benchCalls(b *testing.B, msg string) {
	a := newRig(b, edgeA, bindings.NewMemory())
	a.status(phone, register("ivy", "i1", 1, "Contact: <sip:ivy@198.51.100.7>\r\n"), 200)
	a.send(caller, msg)
	sent := 0
	a.port.Sink = func(*port.Packet) { sent++ }
	a.port.Cycle = true
	d := memport.Datagram{Payload: []byte(msg), Src: caller, Dst: edgeA}
	a.port.In = make([]memport.Datagram, 64)
	for i := range a.port.In {
		a.port.In[i] = d
	}
	b.ReportAllocs()
	b.ResetTimer()
	t0 := time.Now()
	got := 0
	for got < b.N {
		n, _ := a.w.Poll()
		got += n
	}
	el := time.Since(t0)
	b.StopTimer()
	if sent < got {
		b.Fatalf("%d forwarded of %d", sent, got)
	}
	b.ReportMetric(float64(el.Nanoseconds())/float64(got), "ns/call")
	b.ReportMetric(float64(got)/el.Seconds(), "calls/s")
}
