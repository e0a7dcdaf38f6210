package port

import (
	"time"

	"golang.org/x/sys/unix"
)

// Sleep blocks the calling thread in ppoll(2) on fds (POLLIN each) for at
// most timeout (negative: no limit) and reports whether any became
// readable. EINTR (a signal, the runtime's preemption signal included)
// returns false, nil: the caller just loops.
//
// Why a runtime-aware blocking syscall (unix.Syscall6, which tells the
// scheduler the thread is in a syscall) on the worker's own locked thread,
// and not the netpoller or a raw syscall (measured in
// pipeline/port/socketport's commit and the README's wait section):
//
//   - The netpoller parks the goroutine and wakes it from another thread:
//     every datagram costs a futex hand-off between OS threads
//     (stoplockedm/startlockedm) on top of the kernel's own wake-up.
//   - Here the kernel wakes this thread directly. On return the thread
//     takes its P back with one compare-and-swap while the P is still in
//     the syscall state, which it is for any sleep under sysmon's 10 ms
//     retake; after longer sleeps it takes an idle P (GOMAXPROCS leaves
//     one per worker).
//   - A raw syscall would keep the P "running" while asleep: the garbage
//     collector's stop-the-world would have to interrupt the sleep with a
//     signal, and sysmon, seeing a P never idle, would never go to deep
//     sleep and would preempt the worker every 10 ms, idle or not.
func Sleep(fds []unix.PollFd, timeout time.Duration) (bool, error) {
	for i := range fds {
		fds[i].Revents = 0
	}
	var ts unix.Timespec
	tsp := &ts
	if timeout < 0 {
		tsp = nil
	} else {
		ts = unix.NsecToTimespec(int64(timeout))
	}
	n, err := unix.Ppoll(fds, tsp, nil)
	if err != nil {
		if err == unix.EINTR {
			return false, nil
		}
		return false, err
	}
	return n > 0, nil
}
