package tune

import (
	"errors"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Channels is struct ethtool_channels: the NIC's queue counts.
type Channels struct {
	MaxRx, MaxTx, MaxOther, MaxCombined uint32
	Rx, Tx, Other, Combined             uint32
}

// Rings is struct ethtool_ringparam's useful part: descriptors per ring.
type Rings struct {
	RxMax, TxMax uint32
	Rx, Tx       uint32
}

// Hash field bits of ethtool's rx-flow-hash (RXH_*).
const (
	HashIPSrc  = 1 << 4
	HashIPDst  = 1 << 5
	HashL4Src  = 1 << 6 // RXH_L4_B_0_1: source port
	HashL4Dst  = 1 << 7 // RXH_L4_B_2_3: destination port
	HashUDP4   = 0x02   // UDP_V4_FLOW
	HashUDP6   = 0x06   // UDP_V6_FLOW
	hashWanted = HashIPSrc | HashIPDst | HashL4Src | HashL4Dst
)

// ErrNotSupported is what an Ethtool returns for a setting the driver
// does not have (veth has no rings or RSS, for one).
var ErrNotSupported = errors.New("not supported by the driver")

// Ethtool reads and changes a NIC's settings.
type Ethtool interface {
	Driver(ifname string) (string, error)
	Channels(ifname string) (Channels, error)
	SetChannels(ifname string, c Channels) error
	Rings(ifname string) (Rings, error)
	SetRings(ifname string, r Rings) error
	// RxFlowHash returns the Hash* fields for flow (HashUDP4, HashUDP6).
	RxFlowHash(ifname string, flow uint32) (uint64, error)
	SetRxFlowHash(ifname string, flow uint32, fields uint64) error
	// GRO and LRO report (and Set* change) the two offloads.
	GRO(ifname string) (bool, error)
	SetGRO(ifname string, on bool) error
	LRO(ifname string) (bool, error)
	SetLRO(ifname string, on bool) error
}

// ioctlEthtool is the live Ethtool: the SIOCETHTOOL ioctl on a datagram
// socket of the calling thread's network namespace. The legacy ioctl
// covers every setting here on every kernel; netlink ethtool would add
// nothing tune needs.
type ioctlEthtool struct{}

// Live is the Ethtool of this machine.
func Live() Ethtool { return ioctlEthtool{} }

// ifreqData is struct ifreq with ifr_data: the name and a pointer to the
// ethtool command structure.
type ifreqData struct {
	name [unix.IFNAMSIZ]byte
	data unsafe.Pointer
	_    [24 - unsafe.Sizeof(uintptr(0))]byte
}

const (
	ethtoolGDrvinfo   = 0x03
	ethtoolGRingparam = unix.ETHTOOL_GRINGPARAM
	ethtoolSRingparam = 0x11
	ethtoolGChannels  = unix.ETHTOOL_GCHANNELS
	ethtoolSChannels  = 0x3d
	ethtoolGRXFH      = unix.ETHTOOL_GRXFH
	ethtoolSRXFH      = unix.ETHTOOL_SRXFH
	ethtoolGGRO       = unix.ETHTOOL_GGRO
	ethtoolSGRO       = 0x2c
	ethtoolGFlags     = unix.ETHTOOL_GFLAGS
	ethtoolSFlags     = 0x26
	ethFlagLRO        = 1 << 15
)

func (ioctlEthtool) do(ifname string, cmd unsafe.Pointer) error {
	if len(ifname) >= unix.IFNAMSIZ {
		return fmt.Errorf("interface name %q too long", ifname)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var ifr ifreqData
	copy(ifr.name[:], ifname)
	ifr.data = cmd
	_, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.SIOCETHTOOL, uintptr(unsafe.Pointer(&ifr)))
	switch e {
	case 0:
		return nil
	case unix.EOPNOTSUPP:
		return ErrNotSupported
	}
	return e
}

func (e ioctlEthtool) Driver(ifname string) (string, error) {
	var d unix.EthtoolDrvinfo
	d.Cmd = ethtoolGDrvinfo
	if err := e.do(ifname, unsafe.Pointer(&d)); err != nil {
		return "", err
	}
	return unix.ByteSliceToString(d.Driver[:]), nil
}

type ethtoolChannels struct {
	cmd uint32
	c   Channels
}

func (e ioctlEthtool) Channels(ifname string) (Channels, error) {
	v := ethtoolChannels{cmd: ethtoolGChannels}
	err := e.do(ifname, unsafe.Pointer(&v))
	return v.c, err
}

func (e ioctlEthtool) SetChannels(ifname string, c Channels) error {
	v := ethtoolChannels{cmd: ethtoolSChannels, c: c}
	return e.do(ifname, unsafe.Pointer(&v))
}

// ethtoolRingparam is struct ethtool_ringparam.
type ethtoolRingparam struct {
	cmd                                 uint32
	rxMax, rxMiniMax, rxJumboMax, txMax uint32
	rx, rxMini, rxJumbo, tx             uint32
}

func (e ioctlEthtool) Rings(ifname string) (Rings, error) {
	v := ethtoolRingparam{cmd: ethtoolGRingparam}
	err := e.do(ifname, unsafe.Pointer(&v))
	return Rings{RxMax: v.rxMax, TxMax: v.txMax, Rx: v.rx, Tx: v.tx}, err
}

func (e ioctlEthtool) SetRings(ifname string, r Rings) error {
	v := ethtoolRingparam{cmd: ethtoolGRingparam}
	if err := e.do(ifname, unsafe.Pointer(&v)); err != nil {
		return err
	}
	v.cmd, v.rx, v.tx = ethtoolSRingparam, r.Rx, r.Tx
	return e.do(ifname, unsafe.Pointer(&v))
}

// ethtoolRxfh is the head of struct ethtool_rxnfc, all the kernel copies
// for ETHTOOL_GRXFH/SRXFH without FLOW_RSS.
type ethtoolRxfh struct {
	cmd, flow uint32
	data      uint64
}

func (e ioctlEthtool) RxFlowHash(ifname string, flow uint32) (uint64, error) {
	v := ethtoolRxfh{cmd: ethtoolGRXFH, flow: flow}
	err := e.do(ifname, unsafe.Pointer(&v))
	return v.data, err
}

func (e ioctlEthtool) SetRxFlowHash(ifname string, flow uint32, fields uint64) error {
	v := ethtoolRxfh{cmd: ethtoolSRXFH, flow: flow, data: fields}
	return e.do(ifname, unsafe.Pointer(&v))
}

type ethtoolValue struct{ cmd, data uint32 }

func (e ioctlEthtool) GRO(ifname string) (bool, error) {
	v := ethtoolValue{cmd: ethtoolGGRO}
	err := e.do(ifname, unsafe.Pointer(&v))
	return v.data != 0, err
}

func (e ioctlEthtool) SetGRO(ifname string, on bool) error {
	v := ethtoolValue{cmd: ethtoolSGRO}
	if on {
		v.data = 1
	}
	return e.do(ifname, unsafe.Pointer(&v))
}

func (e ioctlEthtool) LRO(ifname string) (bool, error) {
	v := ethtoolValue{cmd: ethtoolGFlags}
	err := e.do(ifname, unsafe.Pointer(&v))
	return v.data&ethFlagLRO != 0, err
}

func (e ioctlEthtool) SetLRO(ifname string, on bool) error {
	v := ethtoolValue{cmd: ethtoolGFlags}
	if err := e.do(ifname, unsafe.Pointer(&v)); err != nil {
		return err
	}
	v.cmd = ethtoolSFlags
	if on {
		v.data |= ethFlagLRO
	} else {
		v.data &^= ethFlagLRO
	}
	return e.do(ifname, unsafe.Pointer(&v))
}
