package afxdp

import (
	"errors"
	"fmt"
	"time"
	"unsafe"

	"github.com/asavie/xdp"
	"golang.org/x/sys/unix"
)

// Desc describes one frame handed between the application and the kernel:
// the UMEM offset of the packet's first byte and its length. It is
// asavie/xdp's descriptor, whose layout is struct xdp_desc (the one sound
// piece of that library this package needs), so RX and TX ring entries are
// read and written as Descs and code written against asavie/xdp's Desc works
// with this package unchanged.
type Desc = xdp.Desc

// frame ownership, tracked per frame so that a double release or a release
// of a frame the kernel still owns is counted instead of corrupting the free
// list (two owners of one frame would mean two packets in one buffer).
const (
	ownFree   uint8 = iota // on the free list
	ownApp                 // handed to the application (received or allocated)
	ownKernel              // in the fill ring or the TX ring, not yet returned
)

// Socket is one AF_XDP socket bound to one queue, with its own UMEM. It is
// used by exactly one goroutine (the worker of that queue); only Close may
// be called from another goroutine, and only once the worker has stopped
// touching the rings.
//
// Frame life cycle: free list -> Fill -> kernel -> Receive -> application ->
// Release (free list) or Transmit (kernel) -> Complete -> free list. Alloc
// takes frames from the free list for building packets to send.
type Socket struct {
	fd       int
	cfg      Config
	zeroCopy bool

	umem               []byte
	fill, comp, rx, tx ring
	fillAddrs          []uint64
	compAddrs          []uint64
	rxDescs            []Desc
	txDescs            []Desc

	free  []uint64 // stack of free frame base addresses
	owner []uint8  // per frame: ownFree, ownApp or ownKernel
	shift uint     // log2(FrameSize): frame index = addr >> shift

	inKernel int // frames in the fill ring, the TX ring or the kernel's own cache

	pollfd [1]unix.PollFd
	stats  SocketStats
	closed bool
}

// SocketStats are the socket's counters: the kernel's (XDP_STATISTICS)
// and the ones this side keeps.
type SocketStats struct {
	// From the kernel.
	RxDropped, RxInvalidDescs, TxInvalidDescs, RxRingFull, RxFillRingEmpty, TxRingEmpty uint64
	// TxRingFull counts frames Transmit could not queue (and freed).
	TxRingFull uint64
	// TxBadDesc counts frames Transmit refused because the descriptor did
	// not lie inside one UMEM frame (the kernel would have dropped them
	// without completing them, losing the frame).
	TxBadDesc uint64
	// BadRelease counts releases of frames the application did not own.
	BadRelease uint64
	// Kicks counts sendto wake-ups; KickErrors the transient ones that
	// failed (EAGAIN, EBUSY, ENOBUFS, ENETDOWN).
	Kicks, KickErrors uint64
}

// ErrSocketClosed is returned by Socket methods after Close.
var ErrSocketClosed = errors.New("afxdp: socket is closed")

// bindRetryFor bounds how long Open waits for the kernel to release a queue
// that a just-closed socket held (it takes ~20 ms after the unmap).
const bindRetryFor = 2 * time.Second

// Open creates the UMEM and an AF_XDP socket bound to cfg.Queue of
// cfg.Ifindex, and puts FillRingSize frames in the fill ring. The caller
// registers the socket in the program's XSK map (Program.Register) to get
// traffic.
func Open(cfg Config) (*Socket, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := raiseMemlock(cfg.UmemBytes()); err != nil {
		return nil, err
	}
	s := &Socket{fd: -1, cfg: cfg}
	if err := s.open(); err != nil {
		s.release()
		return nil, err
	}
	return s, nil
}

func (s *Socket) open() error {
	cfg := s.cfg
	var err error
	s.umem, err = unix.Mmap(-1, 0, int(cfg.UmemBytes()), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("afxdp: mapping UMEM of %d bytes: %w", cfg.UmemBytes(), err)
	}
	s.fd, err = unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("afxdp: creating AF_XDP socket (kernel needs CONFIG_XDP_SOCKETS and CAP_NET_RAW): %w", err)
	}
	reg := unix.XDPUmemReg{
		Addr: uint64(uintptr(unsafe.Pointer(&s.umem[0]))),
		Len:  cfg.UmemBytes(),
		Size: cfg.FrameSize,
	}
	if err := setsockopt(s.fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg)); err != nil {
		return fmt.Errorf("afxdp: registering UMEM of %d bytes (%d frames of %d): %w (is RLIMIT_MEMLOCK large enough?)",
			cfg.UmemBytes(), cfg.FrameCount, cfg.FrameSize, err)
	}
	for _, o := range []struct {
		opt  int
		name string
		size uint32
	}{
		{unix.XDP_UMEM_FILL_RING, "fill", cfg.FillRingSize},
		{unix.XDP_UMEM_COMPLETION_RING, "completion", cfg.CompRingSize},
		{unix.XDP_RX_RING, "rx", cfg.RxRingSize},
		{unix.XDP_TX_RING, "tx", cfg.TxRingSize},
	} {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_XDP, o.opt, int(o.size)); err != nil {
			return fmt.Errorf("afxdp: sizing the %s ring to %d: %w", o.name, o.size, err)
		}
	}
	var off unix.XDPMmapOffsets
	l := uint32(unsafe.Sizeof(off))
	if err := getsockopt(s.fd, unix.XDP_MMAP_OFFSETS, unsafe.Pointer(&off), &l); err != nil {
		return fmt.Errorf("afxdp: reading ring offsets: %w", err)
	}
	if err := s.mapRings(&off); err != nil {
		return err
	}
	if err := s.bind(); err != nil {
		return err
	}
	// A copy-mode socket sends at most the kernel's TX budget (32 by
	// default) per sendto; raising it to the ring size lets one kick drain
	// a whole batch. Kernels without the option keep the default.
	_ = unix.SetsockoptInt(s.fd, unix.SOL_XDP, unix.XDP_MAX_TX_SKB_BUDGET, int(cfg.TxRingSize))

	n := cfg.FrameCount
	s.free = make([]uint64, 0, n)
	s.owner = make([]uint8, n)
	for s.shift = 0; 1<<s.shift < cfg.FrameSize; s.shift++ {
	}
	for i := int(n) - 1; i >= 0; i-- {
		s.free = append(s.free, uint64(i)<<s.shift)
	}
	s.pollfd[0] = unix.PollFd{Fd: int32(s.fd), Events: unix.POLLIN}
	s.Fill()
	return nil
}

func (s *Socket) mapRings(off *unix.XDPMmapOffsets) error {
	cfg := s.cfg
	m := func(name string, pgoff int64, ro unix.XDPRingOffset, size uint32, descSize uintptr) (ring, error) {
		length := int(ro.Desc + uint64(size)*uint64(descSize))
		mem, err := unix.Mmap(s.fd, pgoff, length, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
		if err != nil {
			return ring{}, fmt.Errorf("afxdp: mapping the %s ring (%d bytes): %w", name, length, err)
		}
		return newRing(mem, ringOffsets{uintptr(ro.Producer), uintptr(ro.Consumer), uintptr(ro.Desc), uintptr(ro.Flags)}, size), nil
	}
	var err error
	if s.fill, err = m("fill", unix.XDP_UMEM_PGOFF_FILL_RING, off.Fr, cfg.FillRingSize, 8); err != nil {
		return err
	}
	s.fillAddrs = unsafe.Slice((*uint64)(unsafe.Pointer(&s.fill.mem[off.Fr.Desc])), cfg.FillRingSize)
	if s.comp, err = m("completion", unix.XDP_UMEM_PGOFF_COMPLETION_RING, off.Cr, cfg.CompRingSize, 8); err != nil {
		return err
	}
	s.compAddrs = unsafe.Slice((*uint64)(unsafe.Pointer(&s.comp.mem[off.Cr.Desc])), cfg.CompRingSize)
	if s.rx, err = m("rx", unix.XDP_PGOFF_RX_RING, off.Rx, cfg.RxRingSize, unsafe.Sizeof(Desc{})); err != nil {
		return err
	}
	s.rxDescs = unsafe.Slice((*Desc)(unsafe.Pointer(&s.rx.mem[off.Rx.Desc])), cfg.RxRingSize)
	if s.tx, err = m("tx", unix.XDP_PGOFF_TX_RING, off.Tx, cfg.TxRingSize, unsafe.Sizeof(Desc{})); err != nil {
		return err
	}
	s.txDescs = unsafe.Slice((*Desc)(unsafe.Pointer(&s.tx.mem[off.Tx.Desc])), cfg.TxRingSize)
	return nil
}

func (s *Socket) bind() error {
	var wake uint16
	if s.cfg.NeedWakeup {
		wake = unix.XDP_USE_NEED_WAKEUP
	}
	try := func(mode uint16) error {
		sa := &unix.SockaddrXDP{Flags: mode | wake, Ifindex: uint32(s.cfg.Ifindex), QueueID: uint32(s.cfg.Queue)}
		// The kernel releases a queue asynchronously after its previous
		// socket is closed: EBUSY for a few ms is expected, so retry with
		// a growing pause, within a bound.
		deadline := time.Now().Add(bindRetryFor)
		pause := time.Millisecond
		for {
			err := unix.Bind(s.fd, sa)
			if !errors.Is(err, unix.EBUSY) || time.Now().After(deadline) {
				return err
			}
			time.Sleep(pause)
			if pause < 50*time.Millisecond {
				pause *= 2
			}
		}
	}
	var err error
	switch s.cfg.BindMode {
	case BindZeroCopy:
		err = try(unix.XDP_ZEROCOPY)
	case BindCopy:
		err = try(unix.XDP_COPY)
	default:
		if err = try(unix.XDP_ZEROCOPY); err != nil && !errors.Is(err, unix.EBUSY) {
			err = try(unix.XDP_COPY)
		}
	}
	if err != nil {
		hint := ""
		switch {
		case errors.Is(err, unix.EBUSY):
			hint = fmt.Sprintf(" (another socket still holds the queue after %v)", bindRetryFor)
		case errors.Is(err, unix.EOPNOTSUPP) && s.cfg.BindMode == BindZeroCopy:
			hint = " (the driver has no zero-copy: use bind mode auto or copy)"
		case errors.Is(err, unix.EINVAL):
			hint = " (does the interface have that queue?)"
		}
		return fmt.Errorf("afxdp: binding to ifindex %d queue %d in %s mode: %w%s", s.cfg.Ifindex, s.cfg.Queue, s.cfg.BindMode, err, hint)
	}
	var opts uint32
	l := uint32(unsafe.Sizeof(opts))
	if err := getsockopt(s.fd, unix.XDP_OPTIONS, unsafe.Pointer(&opts), &l); err == nil {
		s.zeroCopy = opts&unix.XDP_OPTIONS_ZEROCOPY != 0
	}
	return nil
}

// FD is the socket's file descriptor, for the XSK map.
func (s *Socket) FD() int { return s.fd }

// Queue is the queue the socket is bound to.
func (s *Socket) Queue() int { return s.cfg.Queue }

// Config is the configuration the socket was opened with.
func (s *Socket) Config() Config { return s.cfg }

// BindMode reports the mode the kernel granted: BindZeroCopy or BindCopy.
func (s *Socket) BindMode() BindMode {
	if s.zeroCopy {
		return BindZeroCopy
	}
	return BindCopy
}

// Frame returns the packet bytes of a received descriptor, aliasing the
// UMEM. Its capacity ends at the end of the frame, so a reply can be built
// in place and grow up to the frame's end.
func (s *Socket) Frame(d Desc) []byte {
	end := (d.Addr>>s.shift + 1) << s.shift
	return s.umem[d.Addr : d.Addr+uint64(d.Len) : end]
}

// Buffer returns the whole frame that starts at addr (from Alloc), to
// write a packet into.
func (s *Socket) Buffer(addr uint64) []byte {
	return s.umem[addr : addr+uint64(s.cfg.FrameSize) : addr+uint64(s.cfg.FrameSize)]
}

// FrameSize is the size of one UMEM frame.
func (s *Socket) FrameSize() uint32 { return s.cfg.FrameSize }

// Frames is the number of frames in the UMEM.
func (s *Socket) Frames() int { return int(s.cfg.FrameCount) }

// FreeFrames is the number of frames on the free list.
func (s *Socket) FreeFrames() int { return len(s.free) }

// KernelFrames is the number of frames the kernel holds: given through the
// fill or TX ring and not yet back through the RX or completion ring.
// FreeFrames + KernelFrames + frames the application holds == Frames.
func (s *Socket) KernelFrames() int { return s.inKernel }

// Fill moves free frames into the fill ring, as many as fit, and returns how
// many. Call it after Release so the kernel always has buffers to receive
// into.
func (s *Socket) Fill() int {
	if s.closed {
		return 0
	}
	n := s.fill.freeSlots(uint32(len(s.free)))
	if n > uint32(len(s.free)) {
		n = uint32(len(s.free))
	}
	if n == 0 {
		return 0
	}
	idx := s.fill.cachedProd
	for i := uint32(0); i < n; i++ {
		a := s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
		s.owner[a>>s.shift] = ownKernel
		s.fillAddrs[(idx+i)&s.fill.mask] = a
	}
	s.fill.publish(n)
	s.inKernel += int(n)
	if s.cfg.NeedWakeup && s.fill.needsWakeup() {
		// The driver stopped polling the fill ring for lack of buffers:
		// a non-blocking recvfrom tells it there are some again.
		s.wake(unix.SYS_RECVFROM)
	}
	return int(n)
}

// Receive takes up to len(descs) received frames off the RX ring. It never
// blocks (see Poll) and allocates nothing. Every received frame must later
// be passed to Release or Transmit.
func (s *Socket) Receive(descs []Desc) int {
	if s.closed || len(descs) == 0 {
		return 0
	}
	n := s.rx.available(uint32(len(descs)))
	if n > uint32(len(descs)) {
		n = uint32(len(descs))
	}
	idx := s.rx.cachedCons
	for i := uint32(0); i < n; i++ {
		d := s.rxDescs[(idx+i)&s.rx.mask]
		descs[i] = d
		s.owner[d.Addr>>s.shift] = ownApp
	}
	if n > 0 {
		s.rx.release(n)
		s.inKernel -= int(n)
	}
	return int(n)
}

// Release returns frames the application holds (received or allocated and
// not sent) to the free list.
func (s *Socket) Release(descs []Desc) {
	for i := range descs {
		s.ReleaseAddr(descs[i].Addr)
	}
}

// ReleaseAddr returns one frame to the free list by any address inside it.
func (s *Socket) ReleaseAddr(addr uint64) {
	i := addr >> s.shift
	if i >= uint64(len(s.owner)) || s.owner[i] != ownApp {
		s.stats.BadRelease++
		return
	}
	s.owner[i] = ownFree
	s.free = append(s.free, i<<s.shift)
}

// Alloc fills addrs with free frame addresses for building packets (write
// them through Buffer) and returns how many it could provide.
func (s *Socket) Alloc(addrs []uint64) int {
	n := min(len(addrs), len(s.free))
	for i := 0; i < n; i++ {
		a := s.free[len(s.free)-1]
		s.free = s.free[:len(s.free)-1]
		s.owner[a>>s.shift] = ownApp
		addrs[i] = a
	}
	return n
}

// Transmit queues descs on the TX ring and wakes the kernel when it asks
// for it. It takes every frame in descs: those that did not fit (ring full)
// or do not lie inside one frame go back to the free list and are counted.
// It returns how many were queued; the error is only for a failed wake-up
// that is not transient.
func (s *Socket) Transmit(descs []Desc) (int, error) {
	if s.closed {
		return 0, ErrSocketClosed
	}
	n := s.tx.freeSlots(uint32(len(descs)))
	if n > uint32(len(descs)) {
		n = uint32(len(descs))
	}
	idx := s.tx.cachedProd
	var queued uint32
	fs := uint64(s.cfg.FrameSize)
	for i := range descs {
		d := descs[i]
		fi := d.Addr >> s.shift
		if fi >= uint64(len(s.owner)) || s.owner[fi] != ownApp || d.Len == 0 || d.Addr+uint64(d.Len) > (fi+1)*fs {
			s.stats.TxBadDesc++
			s.ReleaseAddr(d.Addr)
			continue
		}
		if queued == n {
			s.stats.TxRingFull++
			s.ReleaseAddr(d.Addr)
			continue
		}
		s.owner[fi] = ownKernel
		s.txDescs[(idx+queued)&s.tx.mask] = d
		queued++
	}
	if queued == 0 {
		return 0, nil
	}
	s.tx.publish(queued)
	s.inKernel += int(queued)
	return int(queued), s.kickTx()
}

// kickTx wakes the kernel's TX path. In copy mode the sendto itself sends
// (up to the TX budget), so it is repeated, a bounded number of times,
// while the kernel has not consumed what was queued.
func (s *Socket) kickTx() error {
	if s.cfg.NeedWakeup && !s.tx.needsWakeup() {
		return nil
	}
	for try := 0; try < 4; try++ {
		if err := s.wake(unix.SYS_SENDTO); err != nil {
			return err
		}
		if s.zeroCopy {
			return nil
		}
		s.tx.cachedCons = loadU32(s.tx.consumer)
		if s.tx.cachedCons == s.tx.cachedProd {
			return nil
		}
	}
	return nil
}

// Kick wakes the kernel's TX path if frames are waiting in the TX ring.
func (s *Socket) Kick() error {
	if s.closed {
		return ErrSocketClosed
	}
	if loadU32(s.tx.consumer) == s.tx.cachedProd {
		return nil
	}
	return s.kickTx()
}

// wake issues a non-blocking sendto or recvfrom with no data: the AF_XDP
// way of telling the kernel to look at the rings. Errors that only mean
// "busy, try later" are counted, not returned.
func (s *Socket) wake(sysno uintptr) error {
	s.stats.Kicks++
	_, _, e := unix.Syscall6(sysno, uintptr(s.fd), 0, 0, unix.MSG_DONTWAIT, 0, 0)
	switch e {
	case 0:
		return nil
	case unix.EAGAIN, unix.EBUSY, unix.ENOBUFS, unix.ENETDOWN, unix.EINTR:
		s.stats.KickErrors++
		return nil
	}
	return fmt.Errorf("afxdp: waking queue %d: %w", s.cfg.Queue, e)
}

// SetBusyPoll turns on the kernel's preferred busy polling for the socket's
// queue: usecs is SO_BUSY_POLL, budget SO_BUSY_POLL_BUDGET (frames per
// poll). The error says which option the kernel refused; the socket is then
// left as it was (interrupt driven). Setting SO_BUSY_POLL_BUDGET above the
// default needs CAP_NET_ADMIN.
func (s *Socket) SetBusyPoll(usecs, budget int) error {
	if s.closed {
		return ErrSocketClosed
	}
	opts := []struct {
		name string
		opt  int
		val  int
	}{{"SO_PREFER_BUSY_POLL", unix.SO_PREFER_BUSY_POLL, 1}, {"SO_BUSY_POLL", unix.SO_BUSY_POLL, usecs}, {"SO_BUSY_POLL_BUDGET", unix.SO_BUSY_POLL_BUDGET, budget}}
	for i, o := range opts {
		if err := unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, o.opt, o.val); err != nil {
			for _, u := range opts[:i] {
				unix.SetsockoptInt(s.fd, unix.SOL_SOCKET, u.opt, 0)
			}
			return fmt.Errorf("afxdp: queue %d: %s=%d refused (%w): busy polling needs Linux 5.11+ and CAP_NET_ADMIN", s.cfg.Queue, o.name, o.val, err)
		}
	}
	return nil
}

// BusyPoll drives the queue's NAPI from this thread once (a non-blocking
// recvfrom on a busy-polling socket).
func (s *Socket) BusyPoll() {
	if !s.closed {
		s.wake(unix.SYS_RECVFROM)
	}
}

// Complete moves sent frames from the completion ring to the free list and
// returns how many.
func (s *Socket) Complete() int {
	if s.closed {
		return 0
	}
	n := s.comp.available(s.comp.size)
	idx := s.comp.cachedCons
	for i := uint32(0); i < n; i++ {
		a := s.compAddrs[(idx+i)&s.comp.mask]
		fi := a >> s.shift
		if fi < uint64(len(s.owner)) && s.owner[fi] == ownKernel {
			s.owner[fi] = ownFree
			s.free = append(s.free, fi<<s.shift)
		} else {
			s.stats.BadRelease++
		}
	}
	if n > 0 {
		s.comp.release(n)
		s.inKernel -= int(n)
	}
	return int(n)
}

// TxPending is the number of frames queued on the TX ring that the kernel
// has not yet taken.
func (s *Socket) TxPending() int {
	if s.closed {
		return 0
	}
	return int(s.tx.cachedProd - loadU32(s.tx.consumer))
}

// Poll waits up to timeout for received frames and reports whether there
// are some. A negative timeout waits forever. EINTR is reported as false,
// nil so the worker just loops.
func (s *Socket) Poll(timeout time.Duration) (bool, error) {
	if s.closed {
		return false, ErrSocketClosed
	}
	if s.rx.available(1) > 0 {
		return true, nil
	}
	ms := -1
	if timeout >= 0 {
		ms = int((timeout + time.Millisecond - 1) / time.Millisecond)
	}
	s.pollfd[0].Revents = 0
	n, err := unix.Poll(s.pollfd[:], ms)
	if err != nil {
		if errors.Is(err, unix.EINTR) {
			return false, nil
		}
		return false, fmt.Errorf("afxdp: polling queue %d: %w", s.cfg.Queue, err)
	}
	return n > 0 && s.pollfd[0].Revents&unix.POLLIN != 0, nil
}

// Stats returns the kernel's and this side's counters for the socket.
func (s *Socket) Stats() (SocketStats, error) {
	st := s.stats
	if s.closed {
		return st, ErrSocketClosed
	}
	var ks unix.XDPStatistics
	l := uint32(unsafe.Sizeof(ks))
	if err := getsockopt(s.fd, unix.XDP_STATISTICS, unsafe.Pointer(&ks), &l); err != nil {
		return st, fmt.Errorf("afxdp: reading statistics of queue %d: %w", s.cfg.Queue, err)
	}
	st.RxDropped, st.RxInvalidDescs, st.TxInvalidDescs = ks.Rx_dropped, ks.Rx_invalid_descs, ks.Tx_invalid_descs
	st.RxRingFull, st.RxFillRingEmpty, st.TxRingEmpty = ks.Rx_ring_full, ks.Rx_fill_ring_empty_descs, ks.Tx_ring_empty_descs
	return st, nil
}

// Close unmaps the rings and the UMEM and closes the socket. Unmapping the
// rings is what lets the kernel release the queue: a socket whose rings are
// still mapped keeps it bound until the process exits.
func (s *Socket) Close() error {
	if s.closed {
		return nil
	}
	return s.release()
}

func (s *Socket) release() error {
	s.closed = true
	var errs []error
	for _, r := range []*ring{&s.fill, &s.comp, &s.rx, &s.tx} {
		if r.mem != nil {
			if err := unix.Munmap(r.mem); err != nil {
				errs = append(errs, fmt.Errorf("afxdp: unmapping a ring: %w", err))
			}
			*r = ring{}
		}
	}
	s.fillAddrs, s.compAddrs, s.rxDescs, s.txDescs = nil, nil, nil, nil
	if s.fd >= 0 {
		if err := unix.Close(s.fd); err != nil {
			errs = append(errs, fmt.Errorf("afxdp: closing socket: %w", err))
		}
		s.fd = -1
	}
	// The UMEM goes last: the kernel may still read frames until the
	// socket is closed.
	if s.umem != nil {
		if err := unix.Munmap(s.umem); err != nil {
			errs = append(errs, fmt.Errorf("afxdp: unmapping UMEM: %w", err))
		}
		s.umem = nil
	}
	return errors.Join(errs...)
}

func setsockopt(fd, opt int, p unsafe.Pointer, size uintptr) error {
	_, _, e := unix.Syscall6(unix.SYS_SETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), size, 0)
	if e != 0 {
		return e
	}
	return nil
}

func getsockopt(fd, opt int, p unsafe.Pointer, l *uint32) error {
	_, _, e := unix.Syscall6(unix.SYS_GETSOCKOPT, uintptr(fd), unix.SOL_XDP, uintptr(opt), uintptr(p), uintptr(unsafe.Pointer(l)), 0)
	if e != 0 {
		return e
	}
	return nil
}
