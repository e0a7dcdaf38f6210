package afxdp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// capIPCLock is CAP_IPC_LOCK's bit (linux/capability.h).
const capIPCLock = 14

// raiseMemlock lifts RLIMIT_MEMLOCK, which the UMEM (and on older kernels
// the BPF maps) count against. Where the process may not raise it (no
// CAP_SYS_RESOURCE), the current limit is kept if the UMEM fits and
// otherwise the error gives both figures so the operator can act.
//
// A process holding CAP_IPC_LOCK is not charged for UMEM pages at all
// (the kernel's xdp_umem_account_pages returns early on
// capable(CAP_IPC_LOCK)), so the limit is no reason to refuse it: that is
// how the systemd unit runs, with CAP_IPC_LOCK and without
// CAP_SYS_RESOURCE.
func raiseMemlock(need uint64) error {
	inf := unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}
	if err := unix.Setrlimit(unix.RLIMIT_MEMLOCK, &inf); err == nil {
		return nil
	}
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_MEMLOCK, &cur); err != nil {
		return fmt.Errorf("afxdp: reading RLIMIT_MEMLOCK: %w", err)
	}
	if cur.Cur < cur.Max {
		raised := unix.Rlimit{Cur: cur.Max, Max: cur.Max}
		if unix.Setrlimit(unix.RLIMIT_MEMLOCK, &raised) == nil {
			cur = raised
		}
	}
	return memlockFits(need, cur.Cur, hasIPCLock())
}

// memlockFits is raiseMemlock's verdict once the limit is as high as it
// can go: need bytes of UMEM against limit, exempt with CAP_IPC_LOCK.
func memlockFits(need, limit uint64, ipcLock bool) error {
	if ipcLock || limit == unix.RLIM_INFINITY || limit >= need {
		return nil
	}
	return fmt.Errorf("afxdp: the UMEM needs %d bytes of locked memory but RLIMIT_MEMLOCK is %d and cannot be raised: "+
		"raise it (ulimit -l, systemd LimitMEMLOCK=), grant CAP_IPC_LOCK (then UMEM is not charged to the limit) or lower the frame count", need, limit)
}

// hasIPCLock reports whether CAP_IPC_LOCK is in this thread's effective
// set. Capabilities are per thread, but the daemon never changes them after
// exec, so every thread of the process answers the same.
func hasIPCLock() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[capIPCLock/32].Effective&(1<<(capIPCLock%32)) != 0
}
