package redistest

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Server is one redis-server the test started.
type Server struct {
	Addr string
	Dir  string
	cmd  *exec.Cmd
}

func binary(t testing.TB, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		msg := name + " is not installed: apt-get install -y redis-server (or make test-deps)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

// FreeAddr returns a loopback host:port nobody listens on (for a moment).
func FreeAddr(t testing.TB) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// freeClusterAddr is FreeAddr for a cluster node, whose bus listens on
// the port plus 10000: that one must be free too (CI once saw a node
// abort because another test's socket held it).
func freeClusterAddr(t testing.TB) string {
	for i := 0; i < 100; i++ {
		addr := FreeAddr(t)
		_, ps, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(ps)
		if p+10000 > 65535 {
			continue
		}
		if l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p+10000))); err == nil {
			l.Close()
			return addr
		}
	}
	t.Fatal("redistest: no free port pair (port, port+10000) for a cluster node in 100 tries")
	return ""
}

// Start runs a standalone redis-server on a free port, with its own
// directory and no persistence (extra are more redis-server arguments),
// and waits (bounded) until it answers PING. t.Cleanup stops it.
func Start(t testing.TB, extra ...string) *Server {
	t.Helper()
	return StartOn(t, FreeAddr(t), extra...)
}

// StartOn is Start on addr: a store started again where its clients
// already look for it.
func StartOn(t testing.TB, addr string, extra ...string) *Server {
	t.Helper()
	bin := binary(t, "redis-server")
	_, port, _ := net.SplitHostPort(addr)
	s := &Server{Addr: addr, Dir: t.TempDir()}
	args := append([]string{"--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", s.Dir, "--logfile", filepath.Join(s.Dir, "redis.log")}, extra...)
	s.cmd = exec.Command(bin, args...)
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	t.Cleanup(s.Stop)
	end := time.Now().Add(5 * time.Second)
	for {
		if r, err := s.Cmd("PING"); err == nil && r == "PONG" {
			return s
		}
		if time.Now().After(end) {
			log, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
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

// Cmd sends one inline command and returns the first line of the answer
// (without its type byte) or, for a bulk string, the string.
func (s *Server) Cmd(args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", s.Addr, 500*time.Millisecond)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(c, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(c, "$%d\r\n%s\r\n", len(a), a)
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimRight(line, "\r\n")
	if line == "" {
		return "", fmt.Errorf("empty answer")
	}
	switch line[0] {
	case '-':
		return "", fmt.Errorf("%s", line[1:])
	case '$':
		var n int
		fmt.Sscanf(line[1:], "%d", &n)
		if n < 0 {
			return "", nil
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return line[1:], nil
}

// CommandCalls returns calls of each command from INFO commandstats
// ("hset" -> 12).
func (s *Server) CommandCalls() (map[string]int, error) {
	info, err := s.Cmd("INFO", "commandstats")
	if err != nil {
		return nil, err
	}
	out := map[string]int{}
	for _, l := range strings.Split(info, "\n") {
		l = strings.TrimSpace(l)
		name, rest, ok := strings.Cut(l, ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		var calls int
		fmt.Sscanf(rest, "calls=%d", &calls)
		out[strings.TrimPrefix(name, "cmdstat_")] = calls
	}
	return out, nil
}

// Cluster is a Redis Cluster of three masters with one replica each.
type Cluster struct {
	Nodes []*Server
}

// Addrs are the nodes' host:port.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, n := range c.Nodes {
		out = append(out, n.Addr)
	}
	return out
}

// StartCluster starts six cluster-enabled servers and joins them with
// redis-cli --cluster create, then waits (bounded) for cluster_state:ok on
// every node and for every replica's link to its master.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	cli := binary(t, "redis-cli")
	c := &Cluster{}
	for i := 0; i < 6; i++ {
		c.Nodes = append(c.Nodes, StartOn(t, freeClusterAddr(t), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "1000"))
	}
	args := []string{"--cluster", "create"}
	args = append(args, c.Addrs()...)
	args = append(args, "--cluster-replicas", "1", "--cluster-yes")
	out, err := exec.Command(cli, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("redis-cli --cluster create: %v\n%s", err, out)
	}
	end := time.Now().Add(20 * time.Second)
	for _, n := range c.Nodes {
		for {
			info, err := n.Cmd("CLUSTER", "INFO")
			if err == nil && strings.Contains(info, "cluster_state:ok") {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("cluster node %s not ok within 20s: %v %s", n.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond) // no event to await
		}
	}
	// A replica that has not synced with its master will not take over
	// from it (its data is too old to be elected): wait for every link.
	for _, n := range c.Nodes {
		for {
			info, err := n.Cmd("INFO", "replication")
			if err == nil && (strings.Contains(info, "role:master") || strings.Contains(info, "master_link_status:up")) {
				break
			}
			if time.Now().After(end) {
				t.Fatalf("cluster node %s: replication not up within 20s: %v %s", n.Addr, err, info)
			}
			time.Sleep(50 * time.Millisecond) // no event to await
		}
	}
	return c
}

// MasterOf returns the node serving key's slot as master.
func (c *Cluster) MasterOf(t testing.TB, key string) *Server {
	t.Helper()
	slot, err := c.Nodes[0].Cmd("CLUSTER", "KEYSLOT", key)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range c.Nodes {
		// A master answers GET for the slot's key; a replica redirects.
		if _, err := n.Cmd("GET", key); err == nil {
			return n
		}
	}
	t.Fatalf("no master found for slot %s", slot)
	return nil
}

// Pid is the server's process ID.
func (s *Server) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}
