package redistest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"sipedge/sipcore"
)

// Server is a redis-server a test started, stopped by its pid.
type Server struct {
	Addr string
	dir  string
	cmd  *exec.Cmd
}

// Binary returns the path of redis-server, skipping the test when it is
// not installed (failing it when CI=true).
func Binary(t testing.TB) string {
	t.Helper()
	p, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server is not installed: apt-get install -y redis-server (or make test-deps)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// FreeAddr returns a loopback TCP address free right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Start runs redis-server on addr with its own directory, no persistence,
// and waits (bounded) until it answers PING. t.Cleanup stops it.
func Start(t testing.TB, addr string) *Server {
	t.Helper()
	bin := Binary(t)
	_, port, _ := net.SplitHostPort(addr)
	s := &Server{Addr: addr, dir: t.TempDir()}
	s.cmd = exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.dir, "--logfile", filepath.Join(s.dir, "redis.log"))
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	t.Cleanup(s.Stop)
	end := time.Now().Add(5 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.SetDeadline(time.Now().Add(time.Second))
			fmt.Fprint(c, "PING\r\n")
			buf := make([]byte, 16)
			n, _ := c.Read(buf)
			c.Close()
			if string(buf[:n]) == "+PONG\r\n" {
				return s
			}
		}
		if time.Now().After(end) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			t.Fatalf("redis-server on %s did not answer PING within 5s; log:\n%s", addr, log)
		}
		time.Sleep(10 * time.Millisecond) // the server gives no readiness event
	}
}

// Stop kills the server (by its pid) and waits for it.
func (s *Server) Stop() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// Client is a plain client of the server, closed by t.Cleanup.
func (s *Server) Client(t testing.TB) rueidis.Client {
	t.Helper()
	c, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{s.Addr}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// SetUser writes user's HA1 values for realm under prefix.
func SetUser(t testing.TB, c rueidis.Client, prefix, realm, user, password string) {
	t.Helper()
	err := c.Do(context.Background(), c.B().Hset().Key(prefix+realm+":"+user).FieldValue().
		FieldValue("ha1md5", sipcore.HA1(sipcore.AlgMD5, user, realm, password)).
		FieldValue("ha1sha256", sipcore.HA1(sipcore.AlgSHA256, user, realm, password)).Build()).Error()
	if err != nil {
		t.Fatal(err)
	}
}

// SlowProxy forwards TCP connections on a free loopback address to
// target, holding every chunk the server sends back for delay: a slow
// store, as a loaded Redis or a distant one is. t.Cleanup closes it.
func SlowProxy(t testing.TB, target string, delay time.Duration) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			go pipe(s, c, 0)     // requests go through at once
			go pipe(c, s, delay) // answers are held: the injected latency
		}
	}()
	return l.Addr().String()
}

// pipe copies src to dst, holding each chunk for delay, until either fails;
// then it closes dst.
func pipe(dst, src net.Conn, delay time.Duration) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		if delay > 0 {
			time.Sleep(delay)
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}
