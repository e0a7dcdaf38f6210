package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"sipedge/appliance/config"
)

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	if got := out.String(); got != "sipedge appliance "+version+"\n" {
		t.Errorf("version printed %q", got)
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{nil, {"frobnicate"}, {"check", "-x"}, {"check", "extra"}} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 2 {
			t.Errorf("run(%q) = %d, want 2 (usage)", args, code)
		}
		if !strings.Contains(strings.ToLower(errb.String()), "usage") {
			t.Errorf("run(%q) stderr %q: want the usage", args, errb.String())
		}
	}
}

// check with no -c validates the embedded default on this machine and
// prints an effective configuration that is itself valid.
func TestCheckEmbeddedDefault(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"check"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
	if !strings.Contains(errb.String(), "warning: config: node.secret: empty") {
		t.Errorf("stderr %q: want the generated-secret warning", errb.String())
	}
	c, _, err := config.Check(out.Bytes(), "check output", config.Host())
	if err != nil {
		t.Fatalf("check printed a configuration that does not validate: %v\n%s", err, out.String())
	}
	if len(c.Dispatcher.Backends) != 2 || c.IO.Port != "socket" {
		t.Errorf("effective config lost the defaults:\n%s", out.String())
	}
}

func TestCheckFile(t *testing.T) {
	dir := t.TempDir()
	secret := "s3cr3t-s3cr3t-s3cr3t-s3cr3t"
	good := filepath.Join(dir, "good.toml")
	write(t, good, "[node]\nname = \"edge-9\"\nsecret = \""+secret+"\"\n[io]\nbatch = 16\n[[dispatcher.backends]]\naddress = \"10.1.1.1:5060\"\n")
	var out, errb bytes.Buffer
	if code := run([]string{"check", "-c", good}, &out, &errb); code != 0 {
		t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
	}
	for _, want := range []string{"name = \"edge-9\"", "batch = 16", "address = \"10.1.1.1:5060\"", "weight = 1", "poll_interval = \"1s\"", "wait = \"adaptive\"", "[dispatcher.probe]"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("effective config lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String()+errb.String(), secret) {
		t.Errorf("check printed the secret:\n%s", out.String())
	}
	if errb.Len() != 0 {
		t.Errorf("unexpected stderr %q", errb.String())
	}

	bad := filepath.Join(dir, "bad.toml")
	write(t, bad, "[io]\nport = \"afxdp\"\ninterface = \"nosuchif0\"\nqueues = [0]\nbatchsize = 3\n[log]\nlevel = \"loud\"\n")
	out.Reset()
	errb.Reset()
	if code := run([]string{"check", "-c", bad}, &out, &errb); code != 1 {
		t.Fatalf("exit %d for an invalid file, want 1; stderr:\n%s", code, errb.String())
	}
	if out.Len() != 0 {
		t.Errorf("an invalid config printed an effective one:\n%s", out.String())
	}
	for _, want := range []string{
		"config: io.batchsize: unknown key (did you mean batch?",
		`config: io.interface "nosuchif0": no such interface (ip link shows the names)`,
		`config: log.level "loud": want`,
		"config: dispatcher.backends: empty",
		"appliance check: " + bad + " is not valid",
	} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("stderr lacks %q:\n%s", want, errb.String())
		}
	}

	errb.Reset()
	if code := run([]string{"check", "-c", filepath.Join(dir, "missing.toml")}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "missing.toml") {
		t.Errorf("missing file: exit %d, stderr %q", code, errb.String())
	}
}

func TestRunRefusesBadConfig(t *testing.T) {
	var out, errb bytes.Buffer
	path := filepath.Join(t.TempDir(), "bad.toml")
	write(t, path, "[io]\nbatch = 0\n")
	if code := run([]string{"run", "-c", path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "io.batch") {
		t.Errorf("run with io.batch = 0: exit %d, stderr %q", code, errb.String())
	}
}

// The daemon runs in the foreground, reloads on SIGHUP (refusing a bad
// file and keeping the old one) and exits 0 on SIGTERM.
func TestRunSignals(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "ok.toml")
	good := "[io]\nlisten = \"" + freeUDP(t) + "\"\n[admin]\nlisten = \"\"\n[[dispatcher.backends]]\naddress = \"127.0.0.1:9\"\n"
	write(t, path, good)
	sigs := make(chan os.Signal, 1)
	errb := newSyncBuffer()
	code := make(chan int, 1)
	go func() { code <- runDaemon([]string{"-c", path}, errb, config.Host(), sigs) }()
	waitFor(t, errb, "worker started")
	write(t, path, "[io]\nbatch = 0\n")
	sigs <- syscall.SIGHUP
	waitFor(t, errb, "reload refused")
	write(t, path, good+"[[dispatcher.backends]]\naddress = \"127.0.0.1:7\"\n")
	sigs <- syscall.SIGHUP
	waitFor(t, errb, "reload ok")
	sigs <- syscall.SIGTERM
	select {
	case c := <-code:
		if c != 0 {
			t.Fatalf("exit %d after SIGTERM, want 0; log:\n%s", c, errb.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no exit 10s after SIGTERM; log:\n%s", errb.String())
	}
	if !strings.Contains(errb.String(), "127.0.0.1:7") {
		t.Fatalf("the reload did not log the new backend list:\n%s", errb.String())
	}
}

// freeUDP returns a loopback address with a UDP port free right now (the
// configuration refuses port 0).
func freeUDP(t *testing.T) string {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// syncBuffer is a bytes.Buffer the daemon writes from its goroutines while
// the test reads it.
type syncBuffer struct {
	mu    sync.Mutex
	b     bytes.Buffer
	wrote chan struct{}
}

func newSyncBuffer() *syncBuffer { return &syncBuffer{wrote: make(chan struct{}, 1)} }

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	select {
	case s.wrote <- struct{}{}:
	default:
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits (bounded) until the log contains what, woken by each
// write: the daemon announces each event with one log line.
func waitFor(t *testing.T, b *syncBuffer, what string) {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for !strings.Contains(b.String(), what) {
		select {
		case <-b.wrote:
		case <-deadline:
			t.Fatalf("log never said %q:\n%s", what, b.String())
		}
	}
}

func write(t *testing.T, path, s string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}
