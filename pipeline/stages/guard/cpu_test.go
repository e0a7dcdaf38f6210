package guard_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// clkTck is USER_HZ, the unit of /proc/stat (100 on Linux).
const clkTck = 100

// busyJiffies is the machine's busy CPU time so far, every CPU: all of
// /proc/stat's first line but idle and iowait.
func busyJiffies(t testing.TB) uint64 {
	t.Helper()
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy uint64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		busy += n
	}
	return busy
}

// selfCPU is this process's CPU time so far, in ns.
func selfCPU(t testing.TB) int64 {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}
