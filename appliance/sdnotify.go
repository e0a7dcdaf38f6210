package appliance

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Notify sends state (newline-separated VAR=value lines, see
// sd_notify(3)) to the service manager when the process runs under
// systemd with Type=notify (NOTIFY_SOCKET set); elsewhere it does nothing.
// It is a few lines over a unix datagram socket rather than a library: the
// protocol is one datagram per state change.
func Notify(state string) error {
	path := os.Getenv("NOTIFY_SOCKET")
	if path == "" {
		return nil
	}
	if path[0] == '@' { // abstract namespace
		path = "\x00" + path[1:]
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("appliance: sd_notify to NOTIFY_SOCKET %s: %w", os.Getenv("NOTIFY_SOCKET"), err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("appliance: sd_notify to NOTIFY_SOCKET %s: %w", os.Getenv("NOTIFY_SOCKET"), err)
	}
	return nil
}

// NotifyReloading tells systemd a reload began; READY=1 ends it. The
// monotonic time lets Type=notify-reload match the two.
func NotifyReloading() error {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return Notify("RELOADING=1\nMONOTONIC_USEC=" + strconv.FormatInt(ts.Nano()/1000, 10))
}

// watchdogInterval is how often to feed systemd's watchdog: half of
// WatchdogSec (WATCHDOG_USEC), as sd_watchdog_enabled(3) advises; 0 when
// no watchdog is asked of this process.
func watchdogInterval() time.Duration {
	usec, err := strconv.ParseUint(os.Getenv("WATCHDOG_USEC"), 10, 63)
	if err != nil || usec == 0 {
		return 0
	}
	if pid := os.Getenv("WATCHDOG_PID"); pid != "" && pid != strconv.Itoa(os.Getpid()) {
		return 0
	}
	return time.Duration(usec) * time.Microsecond / 2
}

// liveness decides whether every worker is alive: running, and its loop
// counter moved since the previous check. Between checks the daemon rings
// every worker's bell, so a live worker loops at least once even when
// idle; one stuck in a stage or in the kernel does not, and the watchdog
// then goes unfed and systemd restarts the service.
type liveness struct {
	last []uint64
}

// check takes each worker's loop count and how many workers run, and
// returns "" when all are alive, else why not.
func (l *liveness) check(loops []uint64, running int) string {
	first := l.last == nil
	prev := l.last
	l.last = append(l.last[:0:0], loops...)
	if running < len(loops) {
		return fmt.Sprintf("%d of %d workers running", running, len(loops))
	}
	if first {
		return ""
	}
	var stuck []string
	for i, n := range loops {
		if i < len(prev) && n == prev[i] {
			stuck = append(stuck, strconv.Itoa(i))
		}
	}
	if len(stuck) > 0 {
		return "worker " + strings.Join(stuck, ",") + " made no progress since the last watchdog check"
	}
	return ""
}

// superviseSystemd reports READY=1 once the workers run and, when systemd
// asks for a watchdog, feeds it while every worker is alive, until ctx
// ends. Outside systemd it returns at once.
func (d *Daemon) superviseSystemd(ctx context.Context) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return
	}
	status := fmt.Sprintf("STATUS=%d workers running (%s)", len(d.workers), d.mode)
	if err := Notify("READY=1\n" + status + "\nMAINPID=" + strconv.Itoa(os.Getpid())); err != nil {
		d.log.Warn("systemd readiness", "err", err)
	}
	every := watchdogInterval()
	if every == 0 {
		return
	}
	d.log.Info("systemd watchdog fed while every worker is alive", "every", every.String())
	t := time.NewTicker(every)
	defer t.Stop()
	var l liveness
	loops := make([]uint64, len(d.workers))
	wasStuck := ""
	for {
		for i, w := range d.workers {
			loops[i] = w.Stats().Loops
		}
		why := l.check(loops, int(d.running.Load()))
		if why == "" {
			Notify("WATCHDOG=1")
			if wasStuck != "" {
				Notify(status)
			}
		} else if why != wasStuck {
			d.log.Error("systemd watchdog not fed", "reason", why)
			Notify("STATUS=watchdog not fed: " + why)
		}
		wasStuck = why
		d.wakeWorkers() // a live idle worker loops once before the next check
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
