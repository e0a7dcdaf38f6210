package afxdp

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

func TestMemlockFits(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		need, limit uint64
		ipcLock     bool
		ok          bool
	}{
		{16 * mib, 8 * mib, false, false},
		{16 * mib, 8 * mib, true, true}, // the kernel does not charge a CAP_IPC_LOCK holder
		{4 * mib, 8 * mib, false, true},
		{16 * mib, unix.RLIM_INFINITY, false, true},
	} {
		err := memlockFits(tc.need, tc.limit, tc.ipcLock)
		if (err == nil) != tc.ok {
			t.Errorf("memlockFits(%d, %d, ipcLock=%v) = %v, want ok=%v", tc.need, tc.limit, tc.ipcLock, err, tc.ok)
		}
		if err != nil && !strings.Contains(err.Error(), "CAP_IPC_LOCK") {
			t.Errorf("the refusal does not name CAP_IPC_LOCK as a way out: %v", err)
		}
	}
}

// memlockChildEnv makes the test binary act as the child of
// TestMemlockCapabilities: it registers a 16 MiB UMEM and exits 0 when the
// start-up check and the kernel both accept it, 3 when both refuse, 4
// when they disagree.
const memlockChildEnv = "SIPEDGE_AFXDP_MEMLOCK_CHILD"

// init, not TestMain (xdp_test.go has it): the child must act before any
// test runs.
func init() {
	if os.Getenv(memlockChildEnv) == "1" {
		os.Exit(memlockChild())
	}
}

func memlockChild() int {
	const size = 16 << 20
	checkErr := raiseMemlock(size)
	kernelErr := registerUmem(size)
	os.Stderr.WriteString("check: " + errString(checkErr) + "\nkernel: " + errString(kernelErr) + "\n")
	switch {
	case checkErr == nil && kernelErr == nil:
		return 0
	case checkErr != nil && kernelErr != nil:
		return 3
	}
	return 4
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

// registerUmem asks the kernel to register size bytes of UMEM, which is
// where it charges locked memory (xdp_umem_account_pages).
func registerUmem(size int) error {
	mem, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_POPULATE)
	if err != nil {
		return err
	}
	defer unix.Munmap(mem)
	fd, err := unix.Socket(unix.AF_XDP, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	reg := unix.XDPUmemReg{Addr: uint64(uintptr(unsafe.Pointer(&mem[0]))), Len: uint64(size), Size: 4096}
	return setsockopt(fd, unix.XDP_UMEM_REG, unsafe.Pointer(&reg), unsafe.Sizeof(reg))
}

// TestMemlockCapabilities runs a 16 MiB UMEM registration as a new user
// would in a root shell without CAP_SYS_RESOURCE and with an 8 MiB memlock
// limit: with CAP_IPC_LOCK the kernel takes it and so must the start-up
// check; without it both refuse.
func TestMemlockCapabilities(t *testing.T) {
	requireRoot(t)
	for _, tool := range []string{"setpriv", "prlimit"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") == "true" {
				t.Fatalf("%s not found (Debian package util-linux)", tool)
			}
			t.Skipf("%s not found (Debian package util-linux)", tool)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		drop string
		want int
	}{
		{"with CAP_IPC_LOCK", "-sys_resource", 0},
		{"without CAP_IPC_LOCK", "-sys_resource,-ipc_lock", 3},
	} {
		cmd := exec.Command("prlimit", "--memlock=8388608:8388608", "--",
			"setpriv", "--bounding-set", tc.drop, "--inh-caps", tc.drop, "--", exe, "-test.run", "^$")
		cmd.Env = append(os.Environ(), memlockChildEnv+"=1")
		out, err := cmd.CombinedOutput()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if code != tc.want {
			t.Errorf("%s: child exited %d, want %d (0 both accept, 3 both refuse, 4 they disagree):\n%s", tc.name, code, tc.want, out)
		}
	}
}
