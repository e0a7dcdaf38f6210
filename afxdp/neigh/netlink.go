package neigh

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// nlConn is one NETLINK_ROUTE socket, used by the refresher goroutine only.
type nlConn struct {
	fd  int
	seq uint32
	buf []byte
}

func openNetlink() (*nlConn, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("neigh: netlink socket: %w", err)
	}
	// A bounded wait: a lost reply must not hang the refresher.
	tv := unix.NsecToTimeval((2 * time.Second).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("neigh: netlink receive timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("neigh: netlink bind: %w", err)
	}
	return &nlConn{fd: fd, buf: make([]byte, 1<<16)}, nil
}

func (c *nlConn) close() error { return unix.Close(c.fd) }

var errNoRoute = errors.New("neigh: no route")

// request sends one netlink request and calls fn for every reply message of
// its sequence number until the reply ends (one message, or NLMSG_DONE for a
// dump).
func (c *nlConn) request(typ uint16, flags uint16, body []byte, fn func(typ uint16, data []byte)) error {
	c.seq++
	msg := make([]byte, unix.SizeofNlMsghdr+len(body))
	h := (*unix.NlMsghdr)(unsafe.Pointer(&msg[0]))
	h.Len = uint32(len(msg))
	h.Type = typ
	h.Flags = unix.NLM_F_REQUEST | flags
	h.Seq = c.seq
	copy(msg[unix.SizeofNlMsghdr:], body)
	if err := unix.Sendto(c.fd, msg, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("neigh: netlink send: %w", err)
	}
	dump := flags&unix.NLM_F_DUMP != 0
	for range 1 << 16 { // bounded: a dump of 64k reads is far beyond any table
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		if err != nil {
			return fmt.Errorf("neigh: netlink receive: %w", err)
		}
		for b := c.buf[:n]; len(b) >= unix.SizeofNlMsghdr; {
			h := (*unix.NlMsghdr)(unsafe.Pointer(&b[0]))
			l := int(h.Len)
			if l < unix.SizeofNlMsghdr || l > len(b) {
				return fmt.Errorf("neigh: malformed netlink reply (message length %d of %d bytes)", l, len(b))
			}
			data := b[unix.SizeofNlMsghdr:l]
			if al := (l + unix.NLMSG_ALIGNTO - 1) &^ (unix.NLMSG_ALIGNTO - 1); al < len(b) {
				b = b[al:]
			} else {
				b = nil
			}
			if h.Seq != c.seq {
				continue // a late reply to an earlier, timed-out request
			}
			switch h.Type {
			case unix.NLMSG_DONE:
				return nil
			case unix.NLMSG_ERROR:
				if len(data) < 4 {
					return errors.New("neigh: short netlink error")
				}
				code := int32(binary.NativeEndian.Uint32(data[:4]))
				if code == 0 {
					return nil // an ACK
				}
				return unix.Errno(-code)
			}
			fn(h.Type, data)
			if !dump {
				return nil
			}
		}
	}
	return errors.New("neigh: netlink dump did not end")
}

// attrs walks rtattr-style attributes.
func attrs(b []byte, fn func(typ uint16, v []byte)) {
	for len(b) >= unix.SizeofRtAttr {
		l := int(binary.NativeEndian.Uint16(b[0:2]))
		t := binary.NativeEndian.Uint16(b[2:4])
		if l < unix.SizeofRtAttr || l > len(b) {
			return
		}
		fn(t&^unix.NLA_F_NESTED, b[unix.SizeofRtAttr:l])
		al := (l + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		if al > len(b) {
			return
		}
		b = b[al:]
	}
}

func addrFrom(v []byte) (netip.Addr, bool) {
	switch len(v) {
	case 4:
		return netip.AddrFrom4([4]byte(v)), true
	case 16:
		return netip.AddrFrom16([16]byte(v)), true
	}
	return netip.Addr{}, false
}

// route asks the kernel for the route to dst, as `ip route get` does, and
// returns the next hop (the gateway, or dst itself when directly connected)
// and the output interface.
func (c *nlConn) route(dst netip.Addr) (nextHop netip.Addr, oif int32, err error) {
	fam, bits := unix.AF_INET, 32
	if dst.Is6() {
		fam, bits = unix.AF_INET6, 128
	}
	raw := dst.AsSlice()
	body := make([]byte, unix.SizeofRtMsg+unix.SizeofRtAttr+len(raw))
	rt := (*unix.RtMsg)(unsafe.Pointer(&body[0]))
	rt.Family = uint8(fam)
	rt.Dst_len = uint8(bits)
	a := body[unix.SizeofRtMsg:]
	binary.NativeEndian.PutUint16(a[0:2], uint16(unix.SizeofRtAttr+len(raw)))
	binary.NativeEndian.PutUint16(a[2:4], unix.RTA_DST)
	copy(a[unix.SizeofRtAttr:], raw)
	found := false
	err = c.request(unix.RTM_GETROUTE, 0, body, func(typ uint16, data []byte) {
		if typ != unix.RTM_NEWROUTE || len(data) < unix.SizeofRtMsg {
			return
		}
		rt := (*unix.RtMsg)(unsafe.Pointer(&data[0]))
		if rt.Type != unix.RTN_UNICAST {
			return // local, broadcast, unreachable, blackhole: no next hop
		}
		nextHop = dst
		attrs(data[unix.SizeofRtMsg:], func(t uint16, v []byte) {
			switch t {
			case unix.RTA_GATEWAY:
				if gw, ok := addrFrom(v); ok {
					nextHop = gw
				}
			case unix.RTA_OIF:
				if len(v) == 4 {
					oif = int32(binary.NativeEndian.Uint32(v))
				}
			}
		})
		found = oif != 0
	})
	if err == nil && !found {
		err = errNoRoute
	}
	return nextHop, oif, err
}

type neighKey struct {
	ifindex int32
	addr    netip.Addr
}

// usable neighbour states: the MAC is known (possibly being re-confirmed).
const usable = unix.NUD_REACHABLE | unix.NUD_STALE | unix.NUD_DELAY | unix.NUD_PROBE | unix.NUD_PERMANENT | unix.NUD_NOARP

// firmStates are the states in which the kernel's MAC is confirmed or set
// by the operator: nothing learnt from a frame overrides them.
const firmStates = unix.NUD_REACHABLE | unix.NUD_PERMANENT | unix.NUD_NOARP

// hop is a next hop's MAC and whether the kernel holds it firmly.
type hop struct {
	mac  [6]byte
	firm bool
}

// neighbours dumps the IPv4 and IPv6 neighbour tables.
func (c *nlConn) neighbours() (map[neighKey]hop, error) {
	out := make(map[neighKey]hop)
	body := make([]byte, unix.SizeofNdMsg) // AF_UNSPEC: both families
	err := c.request(unix.RTM_GETNEIGH, unix.NLM_F_DUMP, body, func(typ uint16, data []byte) {
		if typ != unix.RTM_NEWNEIGH || len(data) < unix.SizeofNdMsg {
			return
		}
		nd := (*unix.NdMsg)(unsafe.Pointer(&data[0]))
		if nd.State&usable == 0 {
			return
		}
		var k neighKey
		var mac [6]byte
		haveMAC := false
		k.ifindex = nd.Ifindex
		attrs(data[unix.SizeofNdMsg:], func(t uint16, v []byte) {
			switch t {
			case unix.NDA_DST:
				k.addr, _ = addrFrom(v)
			case unix.NDA_LLADDR:
				if len(v) == 6 {
					mac, haveMAC = [6]byte(v), true
				}
			}
		})
		if haveMAC && k.addr.IsValid() {
			out[k] = hop{mac: mac, firm: nd.State&firmStates != 0}
		}
	})
	return out, err
}
