package vethtest

import (
	"net"
	"net/netip"
	"os"
	"testing"
)

// The functions here wrap the error-returning ones for tests: an error
// fails the test, and what they build goes when the test ends.

// Require skips the test, or fails it when CI=true, unless the process can
// build a pair (see Check).
func Require(t testing.TB) {
	t.Helper()
	err := Check()
	if err == nil {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(err)
	}
	t.Skip(err)
}

// New builds a pair for t (see Create) and removes it, and the namespace,
// when t ends. Outside CI it skips t when the process cannot build one.
func New(t testing.TB, opts Options) *Pair {
	t.Helper()
	Require(t)
	p, err := Create(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Reported, not fatal: the other cleanups must still run.
		if err := p.Close(); err != nil {
			t.Log(err)
		}
	})
	return p
}

// Exec runs args inside the namespace and returns the combined output; a
// failure fails the test with that output.
func (p *Pair) Exec(t testing.TB, args ...string) string {
	t.Helper()
	out, err := p.Run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// ListenUDP opens a UDP socket inside the namespace bound to addr (use
// p.PeerV4 or p.PeerV6 with port 0 for an ephemeral port) and closes it
// when the test ends.
func (p *Pair) ListenUDP(t testing.TB, addr netip.AddrPort) *net.UDPConn {
	t.Helper()
	c, err := p.Listen(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}
