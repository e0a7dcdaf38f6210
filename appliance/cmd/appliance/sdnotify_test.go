package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sipedge/appliance/config"
)

// TestRunNotifiesSystemd runs the daemon as systemd's Type=notify would
// see it: READY=1 once it serves, RELOADING=1 then READY=1 around a SIGHUP
// reload, STOPPING=1 on SIGTERM.
func TestRunNotifiesSystemd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t.Setenv("NOTIFY_SOCKET", sock)
	t.Setenv("WATCHDOG_USEC", "")
	next := func(want string) {
		t.Helper()
		buf := make([]byte, 4096)
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, err := c.Read(buf)
		if err != nil || !strings.HasPrefix(string(buf[:n]), want) {
			t.Fatalf("next notification %q, %v; want it to start with %q", buf[:n], err, want)
		}
	}
	path := filepath.Join(t.TempDir(), "ok.toml")
	write(t, path, "[io]\nlisten = \""+freeUDP(t)+"\"\n[admin]\nlisten = \"\"\n[[dispatcher.backends]]\naddress = \"127.0.0.1:9\"\n")
	sigs := make(chan os.Signal, 1)
	code := make(chan int, 1)
	go func() { code <- runDaemon([]string{"-c", path}, newSyncBuffer(), config.Host(), sigs) }()
	next("READY=1\nSTATUS=1 workers running (socket)")
	sigs <- syscall.SIGHUP
	next("RELOADING=1\nMONOTONIC_USEC=")
	next("READY=1")
	sigs <- syscall.SIGTERM
	next("STOPPING=1")
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d after SIGTERM, want 0", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no exit 10s after SIGTERM")
	}
}
