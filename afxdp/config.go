package afxdp

import (
	"fmt"
	"strings"
)

// XDPMode chooses where the XDP program is attached.
type XDPMode int

const (
	// XDPAuto attaches in the driver when it supports XDP and falls back to
	// the generic (skb) hook otherwise.
	XDPAuto XDPMode = iota
	// XDPNative attaches in the driver and fails when the driver cannot.
	XDPNative
	// XDPGeneric attaches at the generic hook, after the skb is built.
	// Every driver has it; it is slower and on veth puts every flow on
	// queue 0.
	XDPGeneric
)

func (m XDPMode) String() string {
	switch m {
	case XDPAuto:
		return "auto"
	case XDPNative:
		return "native"
	case XDPGeneric:
		return "generic"
	}
	return fmt.Sprintf("XDPMode(%d)", int(m))
}

// ParseXDPMode reads the xdp_mode configuration value.
func ParseXDPMode(s string) (XDPMode, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return XDPAuto, nil
	case "native", "driver", "drv":
		return XDPNative, nil
	case "generic", "skb":
		return XDPGeneric, nil
	}
	return 0, fmt.Errorf("afxdp: xdp_mode %q is not one of auto, native, generic", s)
}

// BindMode chooses how an AF_XDP socket shares frames with the driver.
type BindMode int

const (
	// BindAuto asks for zero-copy and falls back to copy mode when the
	// driver cannot do it (veth, virtio_net and most virtual NICs).
	BindAuto BindMode = iota
	// BindZeroCopy requires zero-copy and fails when the driver lacks it.
	BindZeroCopy
	// BindCopy always copies between the driver's buffers and the UMEM.
	BindCopy
)

func (m BindMode) String() string {
	switch m {
	case BindAuto:
		return "auto"
	case BindZeroCopy:
		return "zerocopy"
	case BindCopy:
		return "copy"
	}
	return fmt.Sprintf("BindMode(%d)", int(m))
}

// ParseBindMode reads the bind_mode configuration value.
func ParseBindMode(s string) (BindMode, error) {
	switch strings.ToLower(s) {
	case "", "auto":
		return BindAuto, nil
	case "zerocopy", "zero-copy", "zc":
		return BindZeroCopy, nil
	case "copy":
		return BindCopy, nil
	}
	return 0, fmt.Errorf("afxdp: bind_mode %q is not one of auto, zerocopy, copy", s)
}

// Config sizes one AF_XDP socket and its UMEM.
type Config struct {
	// Ifindex is the interface the socket binds to.
	Ifindex int
	// Queue is the RX/TX queue of that interface.
	Queue int
	// FrameSize is the size of one UMEM frame: 2048 or 4096.
	FrameSize uint32
	// FrameCount is how many frames the UMEM holds. It must cover the fill
	// ring plus the TX ring, so that receiving never starves sending.
	FrameCount uint32
	// FillRingSize, CompRingSize, RxRingSize and TxRingSize are ring
	// entry counts; each a power of two.
	FillRingSize, CompRingSize, RxRingSize, TxRingSize uint32
	// BindMode picks zero-copy or copy mode.
	BindMode BindMode
	// NeedWakeup sets XDP_USE_NEED_WAKEUP, so the kernel is only woken
	// (by a sendto or poll) when it says it needs to be. Saves a syscall
	// per batch on drivers that keep polling by themselves.
	NeedWakeup bool
}

// DefaultConfig returns a configuration whose UMEM (2048 frames of 2 KiB,
// 4 MiB) fits the default 8 MiB RLIMIT_MEMLOCK even where the limit cannot
// be raised.
func DefaultConfig(ifindex, queue int) Config {
	return Config{
		Ifindex:      ifindex,
		Queue:        queue,
		FrameSize:    2048,
		FrameCount:   2048,
		FillRingSize: 1024,
		CompRingSize: 1024,
		RxRingSize:   1024,
		TxRingSize:   512,
		BindMode:     BindAuto,
		NeedWakeup:   true,
	}
}

// MaxFrameCount bounds a UMEM to 1 Mi frames (2-4 GiB), far beyond any
// sane configuration, so a typo cannot ask the kernel to pin all memory.
const MaxFrameCount = 1 << 20

// UmemBytes is the memory the UMEM pins (it counts against RLIMIT_MEMLOCK).
func (c Config) UmemBytes() uint64 { return uint64(c.FrameSize) * uint64(c.FrameCount) }

// Validate says what is wrong with c, naming the field and what to do.
func (c Config) Validate() error {
	if c.Ifindex <= 0 {
		return fmt.Errorf("afxdp: interface index %d is not valid: give the index of an existing interface", c.Ifindex)
	}
	if c.Queue < 0 {
		return fmt.Errorf("afxdp: queue %d is negative: queues count from 0", c.Queue)
	}
	if c.FrameSize != 2048 && c.FrameSize != 4096 {
		return fmt.Errorf("afxdp: frame size %d is not supported: use 2048 or 4096", c.FrameSize)
	}
	for _, r := range []struct {
		name string
		v    uint32
	}{{"fill ring", c.FillRingSize}, {"completion ring", c.CompRingSize}, {"rx ring", c.RxRingSize}, {"tx ring", c.TxRingSize}} {
		if r.v == 0 || r.v&(r.v-1) != 0 {
			return fmt.Errorf("afxdp: %s size %d is not a power of two: use e.g. 512, 1024, 2048", r.name, r.v)
		}
		if r.v > MaxFrameCount {
			return fmt.Errorf("afxdp: %s size %d exceeds %d entries", r.name, r.v, MaxFrameCount)
		}
	}
	if c.FrameCount == 0 || c.FrameCount > MaxFrameCount {
		return fmt.Errorf("afxdp: frame count %d is out of range 1..%d", c.FrameCount, MaxFrameCount)
	}
	if c.FrameCount < c.FillRingSize+c.TxRingSize {
		return fmt.Errorf("afxdp: frame count %d is less than fill ring (%d) + tx ring (%d): raise the frame count or shrink the rings",
			c.FrameCount, c.FillRingSize, c.TxRingSize)
	}
	if c.CompRingSize < c.TxRingSize {
		return fmt.Errorf("afxdp: completion ring (%d) is smaller than the tx ring (%d): completions could be lost; make it at least as large", c.CompRingSize, c.TxRingSize)
	}
	switch c.BindMode {
	case BindAuto, BindZeroCopy, BindCopy:
	default:
		return fmt.Errorf("afxdp: bind mode %d is not auto, zerocopy or copy", int(c.BindMode))
	}
	return nil
}
