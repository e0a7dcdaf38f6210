package main

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"sipedge/appliance"
	"sipedge/appliance/config"
)

func freeTCP(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// SIGUSR1 drains and SIGUSR2 undrains; `appliance drain -wait` drains and
// returns once the node is idle, printing the state; `-undrain` takes
// calls again; SIGTERM on a quiet node stops without waiting.
func TestDrainSignalsAndCommand(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "drain.toml")
	admin := freeTCP(t)
	write(t, path, "[io]\nlisten = \""+freeUDP(t)+"\"\n[admin]\nlisten = \""+admin+"\"\n[[dispatcher.backends]]\naddress = \"127.0.0.1:9\"\n"+
		"[drain]\nidle = \"100ms\"\ntimeout = \"5s\"\n")
	sigs := make(chan os.Signal, 1)
	errb := newSyncBuffer()
	code := make(chan int, 1)
	go func() { code <- runDaemon([]string{"-c", path}, errb, config.Host(), sigs) }()
	waitFor(t, errb, "admin listening")

	sigs <- syscall.SIGUSR1
	waitFor(t, errb, "reason=SIGUSR1")
	waitFor(t, errb, "drained: no call message")
	sigs <- syscall.SIGUSR2
	waitFor(t, errb, "undrained")

	var out, cerr bytes.Buffer
	if c := drainCmd([]string{"-c", path, "-wait"}, &out, &cerr, config.Host()); c != 0 {
		t.Fatalf("appliance drain -wait: exit %d: %s", c, cerr.String())
	}
	var st appliance.DrainStatus
	if err := json.Unmarshal(out.Bytes(), &st); err != nil || st.State != "drained" || st.Drains != 2 {
		t.Errorf("appliance drain -wait printed %q (%v), want state drained after 2 drains", out.String(), err)
	}
	out.Reset()
	if c := drainCmd([]string{"-admin", admin, "-undrain"}, &out, &cerr, config.Host()); c != 0 || !strings.Contains(out.String(), `"state":"serving"`) {
		t.Errorf("appliance drain -undrain: exit %d, printed %q: %s", c, out.String(), cerr.String())
	}
	if c := drainCmd([]string{"-admin", freeTCP(t)}, &out, &cerr, config.Host()); c != 1 || !strings.Contains(cerr.String(), "is the appliance running") {
		t.Errorf("appliance drain with nothing listening: exit %d: %s", c, cerr.String())
	}

	t0 := time.Now()
	sigs <- syscall.SIGTERM
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d after SIGTERM; log:\n%s", c, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit 10s after SIGTERM; log:\n%s", errb.String())
	}
	if !strings.Contains(errb.String(), "no call under way: stopping without a drain") {
		t.Errorf("SIGTERM on a quiet node did not skip the drain (took %v):\n%s", time.Since(t0), errb.String())
	}
}
