package location

import (
	"context"
	"encoding/binary"
	"net/netip"
	"strings"
	"time"

	"sipedge/pipeline"
	"sipedge/pipeline/stages/registrar/bindings"
	"sipedge/sipcore"
)

// lookup is the helper's work (its own goroutine): the AOR's bindings from
// the store, turned into the Target the worker caches. Answer: Status 0
// with the mailbox slot, seq and the request's invalidation count; 1 on a
// store error.
func (l *Location) lookup(key []byte, a *pipeline.Answer) {
	if len(key) < keySeq {
		a.Status = 1
		return
	}
	reqSeq := binary.LittleEndian.Uint64(key)
	aor := string(key[keySeq:])
	l.Lookups.Add(1)
	ctx, cancel := context.WithTimeout(context.Background(), l.cfg.Deadline)
	defer cancel()
	bs, err := l.cfg.Store.Lookup(ctx, aor)
	if err != nil {
		l.Errors.Add(1)
		a.Status = 1
		return
	}
	t := l.target(ctx, aor, bs)
	slot, seq := l.box.Put(t)
	a.Status, a.Len = 0, 20
	binary.LittleEndian.PutUint32(a.Data[0:], slot)
	binary.LittleEndian.PutUint64(a.Data[4:], seq)
	binary.LittleEndian.PutUint64(a.Data[12:], reqSeq)
}

// target decides where requests for aor go, from its bindings (sorted
// best first): RFC 3327 Path first; a NATed contact is reached at the
// address its REGISTER came from, through the node that received it when
// that is another node (a Route with a flow token); otherwise the contact.
func (l *Location) target(ctx context.Context, aor string, bs []bindings.Binding) *Target {
	if len(bs) == 0 {
		t := &Target{Status: 404, TTL: l.cfg.NegativeTTL}
		if l.cfg.Exists != nil {
			if ok, err := l.cfg.Exists(ctx, aor); err == nil && ok {
				t.Status = 480
			}
		}
		return t
	}
	b := &bs[0]
	t := &Target{RURI: []byte(b.Contact), TTL: min(l.cfg.CacheTTL, time.Until(b.Expires))}
	self := l.cfg.Self.String()
	switch {
	case len(b.Path) > 0:
		if a, ok := uriAddr(b.Path[0]); ok {
			t.Dst = a
			t.Route = []byte("Route: " + strings.Join(b.Path, ", ") + "\r\n")
			return t
		}
		t.Status = 480 // a Path we cannot resolve on the hot path
		return t
	case b.NAT && b.Node != self && b.Node != "":
		node, err1 := netip.ParseAddrPort(b.Node)
		rcv, err2 := netip.ParseAddrPort(b.Received)
		if err1 == nil && err2 == nil {
			t.Dst, t.ViaNode = node, true
			r := append([]byte("Route: <sip:"), l.cfg.Node.Key.AppendFlowToken(nil, rcv)...)
			r = append(r, '@')
			r = append(r, b.Node...)
			r = append(r, ";lr>\r\n"...)
			t.Route = r
			return t
		}
	case b.NAT:
		if rcv, err := netip.ParseAddrPort(b.Received); err == nil {
			t.Dst = rcv
			return t
		}
	}
	if a, ok := uriAddr("<" + b.Contact + ">"); ok {
		t.Dst = a
		return t
	}
	if rcv, err := netip.ParseAddrPort(b.Received); err == nil {
		t.Dst = rcv // a contact host name: the edge does not resolve it
		return t
	}
	t.Status = 480
	return t
}

// uriAddr returns the IP address and port of a "<sip:...>" value.
func uriAddr(v string) (netip.AddrPort, bool) {
	v = strings.TrimSpace(v)
	if i := strings.IndexByte(v, '<'); i >= 0 {
		if j := strings.IndexByte(v[i:], '>'); j > 0 {
			v = v[i+1 : i+j]
		}
	}
	buf := []byte(v)
	var u sipcore.URI
	if sipcore.ParseURI(buf, sipcore.Span{Len: uint16(len(buf))}, &u) != nil {
		return netip.AddrPort{}, false
	}
	if u.HostKind != sipcore.HostIPv4 && u.HostKind != sipcore.HostIPv6 {
		return netip.AddrPort{}, false
	}
	ip, ok := sipcore.ParseIP(buf[u.Host.Off:u.Host.End()])
	if !ok {
		return netip.AddrPort{}, false
	}
	port := uint16(5060)
	if u.HasPort {
		port = u.Port
	}
	return netip.AddrPortFrom(ip.Unmap(), port), true
}
