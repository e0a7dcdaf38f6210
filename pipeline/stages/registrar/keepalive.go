package registrar

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"sipedge/pipeline/stages/registrar/bindings"
	"sipedge/sipcore"
)

// Flows are the NATed bindings whose REGISTER this node received: the
// node that holds a flow keeps it open, so each contact gets keepalives
// from one node only. The registrar's helpers fill it; Keepalive reads it.
type Flows struct {
	mu   sync.Mutex
	aors map[string]map[string]flowEntry
}

type flowEntry struct {
	contact  string
	received netip.AddrPort
	expires  time.Time
}

// track replaces what the node knows of aor's flows with bs's NATed
// bindings it holds.
func (f *Flows) track(aor, self string, bs []bindings.Binding) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.aors == nil {
		f.aors = map[string]map[string]flowEntry{}
	}
	delete(f.aors, aor)
	for _, b := range bs {
		if !b.NAT || b.Node != self || len(b.Path) > 0 {
			continue
		}
		rcv, err := netip.ParseAddrPort(b.Received)
		if err != nil {
			continue
		}
		if f.aors[aor] == nil {
			f.aors[aor] = map[string]flowEntry{}
		}
		f.aors[aor][b.ID] = flowEntry{contact: b.Contact, received: rcv, expires: b.Expires}
	}
}

// Len is how many flows the node holds.
func (f *Flows) Len() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, m := range f.aors {
		n += len(m)
	}
	return n
}

func (f *Flows) snapshot() map[string]map[string]flowEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]map[string]flowEntry, len(f.aors))
	for aor, m := range f.aors {
		c := make(map[string]flowEntry, len(m))
		for id, e := range m {
			c[id] = e
		}
		out[aor] = c
	}
	return out
}

// Flows returns the flows the registrar's helpers track.
func (r *Registrar) Flows() *Flows { return &r.flows }

// Keepalive sends an OPTIONS every Interval to each NATed contact this
// node holds the flow of, so that the NAT keeps the binding open towards
// the node's SIP port and a dead phone shows. The OPTIONS goes to the
// node's own SIP address with a Route carrying the flow token: the location
// stage sends it on from the SIP port the phone registered through (the one
// its NAT lets in), and the phone's answer comes back through the response
// stage to Keepalive's socket. Before each round the store is asked which
// bindings still name this node: a phone that re-registered through
// another node is pinged by that node, never by two. With an AF_XDP port
// the OPTIONS and its answer take the port's slow path (kernel sockets),
// in and out (README.md).
type Keepalive struct {
	Registrar *Registrar
	Store     bindings.Store
	// Self is the node's SIP address; Key the cluster key (flow tokens).
	Self netip.AddrPort
	Key  *sipcore.Key
	// Interval between rounds.
	Interval time.Duration

	// Sent and Answered count keepalives and the answers to them.
	Sent, Answered atomic.Uint64
}

// Run sends keepalives until ctx ends.
func (k *Keepalive) Run(ctx context.Context) error {
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(k.Self.Addr(), 0)))
	if err != nil {
		return fmt.Errorf("registrar: keepalive socket on %s: %w", k.Self.Addr(), err)
	}
	defer conn.Close()
	go func() { <-ctx.Done(); conn.Close() }()
	go k.read(conn)
	local := netip.MustParseAddrPort(conn.LocalAddr().String())
	t := time.NewTicker(k.Interval)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		self := k.Self.String()
		for aor, m := range k.Registrar.flows.snapshot() {
			lctx, cancel := context.WithTimeout(ctx, time.Second)
			bs, err := k.Store.Lookup(lctx, aor)
			cancel()
			if err != nil {
				continue // Redis away: try again next round
			}
			k.Registrar.flows.track(aor, self, bs)
			for id := range m {
				for _, b := range bs {
					if b.ID != id || !b.NAT || b.Node != self {
						continue
					}
					rcv, err := netip.ParseAddrPort(b.Received)
					if err != nil {
						continue
					}
					n++
					msg := k.options(b.Contact, rcv, local, n)
					if _, err := conn.WriteToUDPAddrPort(msg, k.Self); err == nil {
						k.Sent.Add(1)
					}
				}
			}
		}
	}
}

func (k *Keepalive) options(contact string, rcv, local netip.AddrPort, n int) []byte {
	self := k.Self.String()
	b := []byte("OPTIONS " + contact + " SIP/2.0\r\n")
	b = fmt.Appendf(b, "Via: SIP/2.0/UDP %s;branch=z9hG4bKka%x%d;rport\r\n", local, time.Now().UnixNano(), n)
	b = append(b, "Route: <sip:"...)
	b = k.Key.AppendFlowToken(b, rcv)
	b = append(b, "@"+self+";lr>\r\n"...)
	b = append(b, "Max-Forwards: 70\r\nFrom: <sip:keepalive@"+self+">;tag=ka\r\nTo: <"+contact+">\r\n"...)
	b = fmt.Appendf(b, "Call-ID: ka-%d-%x@%s\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n", n, time.Now().UnixNano(), self)
	return b
}

// read counts the answers (any response: the phone is there).
func (k *Keepalive) read(conn *net.UDPConn) {
	buf := make([]byte, 65535)
	var m sipcore.Msg
	for {
		n, _, err := conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			return
		}
		if sipcore.Parse(buf[:n], &m) == nil && !m.IsRequest && m.CSeqMethod == sipcore.MethodOPTIONS {
			k.Answered.Add(1)
		}
	}
}
