package redistest

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"sipedge/sipcore"
)

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
