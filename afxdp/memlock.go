package afxdp

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// raiseMemlock lifts RLIMIT_MEMLOCK, which the UMEM (and on older kernels
// the BPF maps) count against. Where the process may not raise it (no
// CAP_SYS_RESOURCE), the current limit is kept if the UMEM fits and
// otherwise the error gives both figures so the operator can act.
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
	if cur.Cur != unix.RLIM_INFINITY && cur.Cur < need {
		return fmt.Errorf("afxdp: the UMEM needs %d bytes of locked memory but RLIMIT_MEMLOCK is %d and cannot be raised: raise it (ulimit -l, systemd LimitMEMLOCK=) or lower the frame count", need, cur.Cur)
	}
	return nil
}
