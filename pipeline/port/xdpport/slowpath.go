package xdpport

import (
	"errors"
	"fmt"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// slowPath sends datagrams through kernel UDP sockets, one per SIP port and
// family, bound to the wildcard address and the SIP port on the port's
// interface (SO_BINDTODEVICE, SO_REUSEPORT so every queue's port has its
// own). The kernel then resolves the next hop (ARP/ND), which a later
// neighbour lookup will find, and fragments datagrams above the MTU. The
// source address is chosen per datagram with IP_PKTINFO/IPV6_PKTINFO.
//
// The sockets are never read: the XDP program redirects the SIP ports, so
// only what it passes to the kernel (IP fragments, SIP UDP on a queue
// without a socket) lands in them, and a small receive buffer drops it.
type slowPath struct {
	ports   []uint16
	fd4     []int // per ports[i]; -1 when that family is unavailable
	fd6     []int
	ifindex int

	name unix.RawSockaddrInet6
	iov  unix.Iovec
	msg  unix.Msghdr
	ctl  [64]byte
}

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
	s.msg.Name = (*byte)(unsafe.Pointer(&s.name))
	s.msg.Iov = &s.iov
	s.msg.Iovlen = 1
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
		// The socket is never read; keep what the kernel queues small.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, 4096)
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
		return e == 0
	}
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
	s.fd4, s.fd6 = nil, nil
	return errors.Join(errs...)
}

func putPort(dst *uint16, port uint16) {
	b := (*[2]byte)(unsafe.Pointer(dst))
	b[0], b[1] = byte(port>>8), byte(port)
}
