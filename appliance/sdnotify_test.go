package appliance

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/appliance/config"
)

func TestLiveness(t *testing.T) {
	var l liveness
	if why := l.check([]uint64{5, 7}, 2); why != "" {
		t.Errorf("first check with every worker running: %q, want alive", why)
	}
	if why := l.check([]uint64{6, 9}, 2); why != "" {
		t.Errorf("both looped: %q, want alive", why)
	}
	if why := l.check([]uint64{7, 9}, 2); !strings.Contains(why, "worker 1 ") {
		t.Errorf("worker 1 stuck: %q, want it named", why)
	}
	if why := l.check([]uint64{8, 10}, 1); !strings.Contains(why, "1 of 2 workers running") {
		t.Errorf("a worker exited: %q, want it reported", why)
	}
}

// notifySocket listens where NOTIFY_SOCKET points, as systemd would.
func notifySocket(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

// await reads notifications until one contains want, within a bounded
// time; it returns everything read.
func await(t *testing.T, c *net.UnixConn, want string, within time.Duration) []string {
	t.Helper()
	var got []string
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(within))
	for {
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("no %q from the daemon within %v (got %q): %v", want, within, got, err)
		}
		got = append(got, string(buf[:n]))
		if strings.Contains(string(buf[:n]), want) {
			return got
		}
	}
}

// TestSystemdWatchdog runs a daemon as systemd would with Type=notify and
// WatchdogSec: READY=1 once the workers run, WATCHDOG=1 while they loop,
// and no more feeding once a worker has stopped.
func TestSystemdWatchdog(t *testing.T) {
	c := notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "100000") // fed every 50 ms
	t.Setenv("WATCHDOG_PID", "")
	cpus, err := config.Host().CPUs()
	if err != nil || len(cpus) < 2 {
		t.Skipf("needs two CPUs to run two workers (have %v, %v)", cpus, err)
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // a port free right now
	if err != nil {
		t.Fatal(err)
	}
	listen := pc.LocalAddr().String()
	pc.Close()
	toml := fmt.Sprintf("[io]\nport = \"socket\"\nlisten = %q\ncores = [%d, %d]\nwait = \"block\"\n[admin]\nlisten = \"\"\n"+
		"[[dispatcher.backends]]\naddress = \"127.0.0.1:9\"\n", listen, cpus[0], cpus[1])
	cfg, _, err := config.Check([]byte(toml), "test", config.Host())
	if err != nil {
		t.Fatal(err)
	}
	d, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		}
	}
	defer stop()
	await(t, c, "READY=1", 10*time.Second)
	for range 3 { // idle workers in block mode still count as alive
		await(t, c, "WATCHDOG=1", 5*time.Second)
	}
	d.Workers()[1].Stop()
	await(t, c, "STATUS=watchdog not fed: 1 of 2 workers running", 5*time.Second)
	// Absence cannot be awaited: read for five feeding intervals.
	buf := make([]byte, 4096)
	c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
	for {
		n, err := c.Read(buf)
		if err != nil {
			break
		}
		if strings.Contains(string(buf[:n]), "WATCHDOG=1") {
			t.Fatal("the watchdog was fed with a worker stopped")
		}
	}
	// The workers' threads go back to every CPU when they stop: the
	// runtime reuses them, and a process started from one would inherit a
	// one-core mask.
	stop()
	tasks, _ := os.ReadDir("/proc/self/task")
	for _, task := range tasks {
		tid, _ := strconv.Atoi(task.Name())
		var set unix.CPUSet
		if unix.SchedGetaffinity(tid, &set) == nil && set.Count() < len(cpus) {
			t.Errorf("thread %d left on %d CPUs of %d after the daemon stopped", tid, set.Count(), len(cpus))
		}
	}
}

func TestWatchdogInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "20000000")
	t.Setenv("WATCHDOG_PID", "1") // another process's watchdog
	if got := watchdogInterval(); got != 0 {
		t.Errorf("WATCHDOG_PID of another process: interval %v, want 0", got)
	}
	t.Setenv("WATCHDOG_PID", "")
	if got := watchdogInterval(); got != 10*time.Second {
		t.Errorf("WatchdogSec=20s: interval %v, want 10s", got)
	}
}
