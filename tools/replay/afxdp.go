package replay

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"time"

	"sipedge/afxdp"
	"sipedge/afxdp/neigh"
	"sipedge/pipeline/port"
	"sipedge/pipeline/port/xdpport"
)

// AFXDPReport is what the afxdp mode measured, from the port's counters.
type AFXDPReport struct {
	Interface string   `json:"interface"`
	Ports     []uint16 `json:"sip_ports"`
	// Ring is datagrams queued on the AF_XDP TX ring; SlowPath those the
	// kernel socket sent (neighbour not resolved yet, or above the MTU).
	Ring     uint64 `json:"tx_ring"`
	SlowPath uint64 `json:"tx_slow_path"`
	// Dropped is datagrams the port could not send (ring full, no
	// destination, too large for a frame, slow path refused).
	Dropped uint64 `json:"tx_dropped"`
}

// maxSinkPorts bounds the SIP ports the afxdp sink opens: each is an XDP
// redirect rule and a slow-path socket pair.
const maxSinkPorts = 32

// afxdpFrameSize fits any SIP datagram up to a jumbo-ish 4000 bytes in one
// frame; larger ones are dropped and counted.
const afxdpFrameSize = 4096

// afxdpSink sends through an AF_XDP socket on queue 0 of an interface,
// batching up to len(tx) datagrams per TX ring update.
type afxdpSink struct {
	ifname string
	g      *xdpport.Group
	p      *xdpport.Port
	nb     *neigh.Table
	tx     []port.Packet
	n      int
	free0  int // free UMEM frames before sending: all back means all sent
	unsent int // refused by flushes inside Send, reported by the next Flush
	rep    *AFXDPReport
}

// scanEndpoints reads the inputs once for the destinations (to resolve
// their MACs up front) and the SIP ports (destinations first, then
// sources: the slow path sends from a socket bound to the source port).
func scanEndpoints(o *Options) (dsts []netip.Addr, ports []uint16, err error) {
	one := *o
	one.Loop = 1
	var s Summary
	s.Requests, s.Responses = map[string]uint64{}, map[string]uint64{}
	src, err := newSource(&one, &s)
	if err != nil {
		return nil, nil, err
	}
	defer src.close()
	seen := map[netip.Addr]bool{}
	var dp, sp []uint16
	var d Datagram
	for {
		err := src.next(&d)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, nil, err
		}
		if a := d.Dst.Addr().Unmap(); !seen[a] {
			seen[a] = true
			dsts = append(dsts, a)
		}
		if !slices.Contains(dp, d.Dst.Port()) && d.Dst.Port() != 0 {
			dp = append(dp, d.Dst.Port())
		}
		if !slices.Contains(sp, d.Src.Port()) && d.Src.Port() != 0 {
			sp = append(sp, d.Src.Port())
		}
	}
	ports = dp
	for _, p := range sp {
		if len(ports) >= maxSinkPorts {
			break
		}
		if !slices.Contains(ports, p) {
			ports = append(ports, p)
		}
	}
	if len(ports) > maxSinkPorts {
		ports = ports[:maxSinkPorts]
	}
	if len(ports) == 0 {
		return nil, nil, fmt.Errorf("no SIP datagram in %v to replay", o.Inputs)
	}
	return dsts, ports, nil
}

// newAFXDPSink opens queue 0 of ifname. The XDP program xdpport attaches
// redirects datagrams arriving for the SIP ports to this socket, where
// nothing reads them: on a sender that is harmless, and undone at Close.
func newAFXDPSink(o *Options, ifname string, rep *AFXDPReport) (*afxdpSink, error) {
	if ifname == "" {
		return nil, errors.New("--into afxdp:IFACE needs an interface name")
	}
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return nil, fmt.Errorf("--into afxdp:%s: %w", ifname, err)
	}
	dsts, ports, err := scanEndpoints(o)
	if err != nil {
		return nil, err
	}
	k := &afxdpSink{ifname: ifname, rep: rep, tx: make([]port.Packet, 64)}
	rep.Interface, rep.Ports = ifname, ports
	if k.nb, err = neigh.New(neigh.Config{Interval: 100 * time.Millisecond}); err != nil {
		return nil, fmt.Errorf("--into afxdp:%s: neighbour table: %w", ifname, err)
	}
	sc := afxdp.DefaultConfig(ifi.Index, 0)
	sc.FrameSize = afxdpFrameSize
	k.g, err = xdpport.Open(ifname, 1, xdpport.Config{Ports: ports, Socket: sc, Batch: len(k.tx), Neighbours: k.nb})
	if err != nil {
		k.nb.Stop()
		return nil, fmt.Errorf("--into afxdp:%s: %w (AF_XDP needs root and an Ethernet interface)", ifname, err)
	}
	k.p = k.g.Ports()[0]
	// Resolve the destinations before the first datagram, so they go
	// through the ring; an unresolved one takes the kernel socket (which
	// resolves it) until the next refresh.
	for _, a := range dsts {
		k.nb.Want(a)
	}
	k.nb.Start()
	timeout := time.After(2 * time.Second)
wait:
	for !k.resolved(dsts) {
		select {
		case <-k.nb.Refreshed():
		case <-timeout:
			break wait
		}
	}
	k.p.Transmit(nil) // settle the fill ring before counting free frames
	k.free0, _, _ = k.p.Frames()
	return k, nil
}

// resolved reports whether every destination has a MAC (at most 16 are
// waited for: a capture with many destinations starts at once).
func (k *afxdpSink) resolved(dsts []netip.Addr) bool {
	for _, a := range dsts[:min(len(dsts), 16)] {
		if _, ok := k.nb.Lookup(a); !ok {
			return false
		}
	}
	return true
}

func (k *afxdpSink) Send(d *Datagram) error {
	if k.n == len(k.tx) {
		unsent, err := k.Flush()
		k.unsent += unsent
		if err != nil {
			return err
		}
	}
	pk := &k.tx[k.n]
	if k.p.Alloc(k.tx[k.n:k.n+1]) != 1 {
		// Every frame is on the TX ring: wait for the kernel to complete
		// some (bounded: a stuck ring is an error, not a hang).
		deadline := time.Now().Add(time.Second)
		for k.p.Alloc(k.tx[k.n:k.n+1]) != 1 {
			if time.Now().After(deadline) {
				return fmt.Errorf("afxdp %s: no free frame for a second: the TX ring does not drain", k.ifname)
			}
			k.p.Transmit(nil)
			time.Sleep(50 * time.Microsecond)
		}
	}
	if len(d.Payload) > cap(pk.Payload) {
		// Too large for a frame: Transmit drops it, counted (never a copy
		// past the frame).
		pk.Payload = pk.Payload[:0]
	} else {
		pk.Payload = append(pk.Payload[:0], d.Payload...)
	}
	pk.Src, pk.Dst, pk.HW = d.Src, d.Dst, [6]byte{}
	k.n++
	return nil
}

// Flush puts the batched datagrams on the TX ring and returns how many the
// port could not send since the last Flush.
func (k *afxdpSink) Flush() (int, error) {
	unsent := k.unsent
	k.unsent = 0
	if k.n == 0 {
		return unsent, nil
	}
	n := k.n
	k.n = 0
	sent, err := k.p.Transmit(k.tx[:n])
	return unsent + n - sent, err
}

// Close flushes, waits (at most 2 s) until the kernel completed every
// frame on the TX ring, then detaches the program and closes the socket.
func (k *afxdpSink) Close() error {
	var err error
	if k.n > 0 { // Run flushes before Close; this is a safety net
		_, err = k.Flush()
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		k.p.Transmit(nil)
		if free, _, _ := k.p.Frames(); free >= k.free0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	st := k.p.Stats()
	k.rep.Ring, k.rep.SlowPath, k.rep.Dropped = st.Transmitted, st.SlowPath, st.TxDrops.Total()
	if cerr := k.g.Close(); err == nil {
		err = cerr
	}
	k.nb.Stop()
	return err
}
