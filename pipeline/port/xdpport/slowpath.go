package xdpport

import (
	"errors"
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"

	"sipedge/pipeline/port"
)

// slowPath is the port's kernel UDP sockets, one per SIP port and family,
// bound to the wildcard address and the SIP port on the port's interface
// (SO_BINDTODEVICE, SO_REUSEPORT so every queue's port has its own).
//
// Sending through them lets the kernel resolve the next hop (ARP/ND), which
// a later neighbour lookup will find, and fragment datagrams above the MTU.
// The source address is chosen per datagram with IP_PKTINFO/IPV6_PKTINFO.
//
// They are also read: the XDP program passes IP fragments to the kernel,
// which reassembles them and delivers the datagram (SIP above the MTU) to
// one of these sockets, as it does SIP UDP that arrived on a queue without
// an AF_XDP socket. IP_PKTINFO/IPV6_RECVPKTINFO give the address each was
// sent to.
type slowPath struct {
	ports   []uint16
	fd4     []int // per ports[i]; -1 when that family is unavailable
	fd6     []int
	ifindex int
	rx      []slowSock // every open socket, in the port's poll order

	name unix.RawSockaddrInet6
	iov  unix.Iovec
	msg  unix.Msghdr
	ctl  [64]byte

	// Receive side, separate from the send side's so neither call has to
	// reset what the other set.
	rname unix.RawSockaddrInet6
	riov  unix.Iovec
	rmsg  unix.Msghdr
	rctl  [16]uint64 // uint64 so the control messages are aligned

	outq int32 // SIOCOUTQ result, a field so the pointer does not escape
}

// slowSock is one slow-path socket the port reads.
type slowSock struct {
	fd   int
	port uint16
	v6   bool
	// ovfl is the socket's drop count (SO_RXQ_OVFL) as last reported.
	ovfl uint32
}

// slowRcvBuf is the slow-path sockets' receive buffer: room for a burst of
// reassembled datagrams while the worker is busy with a batch. The kernel
// doubles it and charges each datagram the truesize of its fragments'
// buffers (about 4.4 KiB for 3000 bytes over veth): 256 KiB held ~115,
// fewer than BenchmarkReceiveEchoFragmented keeps in flight, and
// overflowed; 1 MiB holds ~480 (TestSlowPathOverflowCounted).
const slowRcvBuf = 1 << 20

// recv results.
const (
	recvOK       = iota
	recvEmpty    // nothing queued (EAGAIN)
	recvTooLarge // the datagram did not fit the buffer: handed up cut, Truncated
	recvFailed   // the socket reported an error
)

func openSlowPath(ifname string, ifindex int, ports []uint16) (*slowPath, error) {
	s := &slowPath{ports: ports, ifindex: ifindex}
	for _, port := range ports {
		fd4, err := slowSocket(unix.AF_INET, ifname, port)
		if err != nil {
			s.close()
			return nil, err
		}
		s.fd4 = append(s.fd4, fd4)
		fd6, err := slowSocket(unix.AF_INET6, ifname, port)
		if err != nil {
			s.close()
			return nil, err
		}
		s.fd6 = append(s.fd6, fd6)
	}
	for i, port := range ports {
		if s.fd4[i] >= 0 {
			s.rx = append(s.rx, slowSock{fd: s.fd4[i], port: port})
		}
		if s.fd6[i] >= 0 {
			s.rx = append(s.rx, slowSock{fd: s.fd6[i], port: port, v6: true})
		}
	}
	s.msg.Name = (*byte)(unsafe.Pointer(&s.name))
	s.msg.Iov = &s.iov
	s.msg.Iovlen = 1
	s.rmsg.Name = (*byte)(unsafe.Pointer(&s.rname))
	s.rmsg.Iov = &s.riov
	s.rmsg.Iovlen = 1
	return s, nil
}

// slowSocket opens one slow-path socket; -1, nil when the kernel lacks
// the family.
func slowSocket(family int, ifname string, port uint16) (int, error) {
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_UDP)
	if errors.Is(err, unix.EAFNOSUPPORT) {
		return -1, nil
	}
	if err != nil {
		return -1, fmt.Errorf("xdpport: slow-path UDP socket: %w", err)
	}
	fam := "IPv4"
	var sa unix.Sockaddr = &unix.SockaddrInet4{Port: int(port)}
	setup := func() error {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_REUSEPORT, 1); err != nil {
			return fmt.Errorf("SO_REUSEPORT: %w", err)
		}
		if err := unix.SetsockoptString(fd, unix.SOL_SOCKET, unix.SO_BINDTODEVICE, ifname); err != nil {
			return fmt.Errorf("SO_BINDTODEVICE %s (needs CAP_NET_RAW): %w", ifname, err)
		}
		// Root may exceed net.core.rmem_max with SO_RCVBUFFORCE; without
		// CAP_NET_ADMIN the kernel caps SO_RCVBUF at rmem_max, which is
		// still enough for a few reassembled datagrams.
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, slowRcvBuf) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, slowRcvBuf)
		}
		// The kernel's count of datagrams dropped for a full buffer
		// comes with each datagram read, so overflow is counted.
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RXQ_OVFL, 1); err != nil {
			return fmt.Errorf("SO_RXQ_OVFL: %w", err)
		}
		if family == unix.AF_INET {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_PKTINFO, 1); err != nil {
				return fmt.Errorf("IP_PKTINFO: %w", err)
			}
		} else if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVPKTINFO, 1); err != nil {
			return fmt.Errorf("IPV6_RECVPKTINFO: %w", err)
		}
		if family == unix.AF_INET6 {
			if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, 1); err != nil {
				return fmt.Errorf("IPV6_V6ONLY: %w", err)
			}
		}
		return unix.Bind(fd, sa)
	}
	if family == unix.AF_INET6 {
		fam, sa = "IPv6", &unix.SockaddrInet6{Port: int(port)}
	}
	if err := setup(); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("xdpport: slow-path %s UDP socket on port %d of %s: %w (is another program bound to that port without SO_REUSEPORT?)", fam, port, ifname, err)
	}
	return fd, nil
}

// send sends payload from src to dst; false when it could not.
func (s *slowPath) send(src, dst netip.AddrPort, payload []byte) bool {
	fd := -1
	v6 := dst.Addr().Is6()
	for i, port := range s.ports {
		if port == src.Port() {
			if v6 {
				fd = s.fd6[i]
			} else {
				fd = s.fd4[i]
			}
			break
		}
	}
	if fd < 0 {
		return false
	}
	clear(s.ctl[:])
	c := (*unix.Cmsghdr)(unsafe.Pointer(&s.ctl[0]))
	data := unsafe.Pointer(&s.ctl[unix.CmsgLen(0)])
	if v6 {
		s.name = unix.RawSockaddrInet6{Family: unix.AF_INET6, Addr: dst.Addr().As16()}
		putPort(&s.name.Port, dst.Port())
		s.msg.Namelen = unix.SizeofSockaddrInet6
		c.Level, c.Type = unix.IPPROTO_IPV6, unix.IPV6_PKTINFO
		c.SetLen(unix.CmsgLen(unix.SizeofInet6Pktinfo))
		pi := (*unix.Inet6Pktinfo)(data)
		pi.Addr = src.Addr().As16()
		pi.Ifindex = uint32(s.ifindex)
		s.msg.SetControllen(unix.CmsgSpace(unix.SizeofInet6Pktinfo))
	} else {
		n4 := (*unix.RawSockaddrInet4)(unsafe.Pointer(&s.name))
		*n4 = unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: dst.Addr().As4()}
		putPort(&n4.Port, dst.Port())
		s.msg.Namelen = unix.SizeofSockaddrInet4
		c.Level, c.Type = unix.IPPROTO_IP, unix.IP_PKTINFO
		c.SetLen(unix.CmsgLen(unix.SizeofInet4Pktinfo))
		pi := (*unix.Inet4Pktinfo)(data)
		pi.Spec_dst = src.Addr().As4()
		s.msg.SetControllen(unix.CmsgSpace(unix.SizeofInet4Pktinfo))
	}
	s.msg.Control = &s.ctl[0]
	if len(payload) > 0 {
		s.iov.Base = &payload[0]
	} else {
		s.iov.Base = &s.ctl[0] // any valid pointer for an empty datagram
	}
	s.iov.SetLen(len(payload))
	for {
		_, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(fd), uintptr(unsafe.Pointer(&s.msg)), unix.MSG_DONTWAIT)
		if e == unix.EINTR {
			continue
		}
		// The payload is UMEM, unmapped on close: keep no pointer to it.
		s.iov.Base = nil
		return e == 0
	}
}

// recv reads one datagram from s.rx[i] into buf, without blocking, and on
// recvOK sets pk's Payload (aliasing buf), Src and Dst. A datagram longer
// than buf is reported as recvTooLarge with pk set to its start and
// Truncated. overflow is how many
// datagrams the kernel newly reports it dropped on that socket.
func (s *slowPath) recv(i int, buf []byte, pk *port.Packet) (res int, overflow uint32) {
	sk := &s.rx[i]
	s.riov.Base = &buf[0]
	s.riov.SetLen(len(buf))
	s.rmsg.Namelen = unix.SizeofSockaddrInet6
	s.rmsg.Control = (*byte)(unsafe.Pointer(&s.rctl[0]))
	s.rmsg.SetControllen(int(unsafe.Sizeof(s.rctl)))
	s.rmsg.Flags = 0
	var n uintptr
	var e unix.Errno
	for {
		n, _, e = unix.Syscall(unix.SYS_RECVMSG, uintptr(sk.fd), uintptr(unsafe.Pointer(&s.rmsg)), unix.MSG_DONTWAIT)
		if e != unix.EINTR {
			break
		}
	}
	// buf is UMEM, unmapped on close: keep no pointer to it.
	s.riov.Base = nil
	switch {
	case e == unix.EAGAIN:
		return recvEmpty, 0
	case e != 0:
		return recvFailed, 0
	}
	var src, dst netip.Addr
	if sk.v6 {
		src = netip.AddrFrom16(s.rname.Addr)
	} else {
		src = netip.AddrFrom4((*unix.RawSockaddrInet4)(unsafe.Pointer(&s.rname)).Addr)
	}
	ctl := unsafe.Slice((*byte)(unsafe.Pointer(&s.rctl[0])), len(s.rctl)*8)
	ctl = ctl[:min(int(s.rmsg.Controllen), len(ctl))]
	for len(ctl) >= unix.SizeofCmsghdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&ctl[0]))
		l := int(h.Len)
		if l < unix.CmsgLen(0) || l > len(ctl) {
			break
		}
		data := ctl[unix.CmsgLen(0):l]
		switch {
		case h.Level == unix.IPPROTO_IP && h.Type == unix.IP_PKTINFO && len(data) >= unix.SizeofInet4Pktinfo:
			// Addr is the header's destination; Spec_dst the local
			// address routing would pick, which differs for broadcast.
			dst = netip.AddrFrom4((*unix.Inet4Pktinfo)(unsafe.Pointer(&data[0])).Addr)
		case h.Level == unix.IPPROTO_IPV6 && h.Type == unix.IPV6_PKTINFO && len(data) >= unix.SizeofInet6Pktinfo:
			dst = netip.AddrFrom16((*unix.Inet6Pktinfo)(unsafe.Pointer(&data[0])).Addr)
		case h.Level == unix.SOL_SOCKET && h.Type == unix.SO_RXQ_OVFL && len(data) >= 4:
			// A running total, wrapping at 2^32: the difference counts.
			v := *(*uint32)(unsafe.Pointer(&data[0]))
			overflow, sk.ovfl = v-sk.ovfl, v
		}
		next := unix.CmsgSpace(l - unix.CmsgLen(0))
		if next >= len(ctl) {
			break
		}
		ctl = ctl[next:]
	}
	pk.Payload = buf[:min(int(n), len(buf))]
	pk.Src = netip.AddrPortFrom(src, getPort(s.rname.Port))
	// Without pktinfo (never seen) Dst keeps the port but no address, so
	// a reply's source falls back to the port's own address.
	pk.Dst = netip.AddrPortFrom(dst, sk.port)
	pk.Truncated = s.rmsg.Flags&unix.MSG_TRUNC != 0
	if pk.Truncated {
		return recvTooLarge, overflow
	}
	return recvOK, overflow
}

// queued reports whether any send socket holds datagrams the kernel has
// not handed to the device yet: a UDP socket's SIOCOUTQ is its write
// memory, charged from sendmsg until the device frees (or orphans) the
// packet, which includes time spent queued behind a neighbour resolution.
// An error answers true: holding order is the safe side.
func (s *slowPath) queued() bool {
	for _, fds := range [2][]int{s.fd4, s.fd6} {
		for _, fd := range fds {
			if fd < 0 {
				continue
			}
			s.outq = 0
			_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCOUTQ, uintptr(unsafe.Pointer(&s.outq)))
			if e != 0 || s.outq > 0 {
				return true
			}
		}
	}
	return false
}

func (s *slowPath) close() error {
	if s == nil {
		return nil
	}
	var errs []error
	for _, fds := range [][]int{s.fd4, s.fd6} {
		for _, fd := range fds {
			if fd >= 0 {
				if err := unix.Close(fd); err != nil {
					errs = append(errs, fmt.Errorf("xdpport: closing a slow-path socket: %w", err))
				}
			}
		}
	}
	s.fd4, s.fd6, s.rx = nil, nil, nil
	return errors.Join(errs...)
}

// getPort reads a port in network byte order.
func getPort(p uint16) uint16 {
	b := (*[2]byte)(unsafe.Pointer(&p))
	return uint16(b[0])<<8 | uint16(b[1])
}

func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}
