package guard

import (
	"net/netip"
	"slices"
)

// What the guard trusts, and how far. Anything in a datagram may be
// forged, its source address included, so trust never exempts a source
// from everything: backends (address and port) have a limit of their own;
// backends' addresses and the trusted networks are never banned (a ban is
// by address, and a forged datagram must not cut off a backend or a
// trunk); only the allow-list skips the limits.

// trustSnap is the trusted sets, replaced whole (SetTrusted) and loaded
// by each worker once per batch.
type trustSnap struct {
	backends []netip.AddrPort
	neverBan []netip.Prefix
}

// SetTrusted replaces the backends (address and port) and the networks
// never banned (a reload). Workers see them from their next batch; bans
// already in force on those addresses are lifted.
func (g *Guard) SetTrusted(backends []netip.AddrPort, neverBan []netip.Prefix) {
	t := &trustSnap{}
	for _, b := range backends {
		t.backends = append(t.backends, netip.AddrPortFrom(b.Addr().Unmap(), b.Port()))
	}
	for _, p := range neverBan {
		if p.IsValid() {
			t.neverBan = append(t.neverBan, normPrefix(p))
		}
	}
	g.trust.Store(t)
	var lift []netip.Addr
	g.mu.Lock()
	for a := range g.registry {
		if t.never(a) {
			lift = append(lift, a)
		}
	}
	g.mu.Unlock()
	for _, a := range lift {
		g.Unban(a) // best effort: a full command ring is retried by nobody, the ban lapses
	}
}

// TrustedBackends returns the backends the guard limits by their own
// limits and never bans, as last set by SetTrusted.
func (g *Guard) TrustedBackends() []netip.AddrPort {
	if t := g.trust.Load(); t != nil {
		return slices.Clone(t.backends)
	}
	return nil
}

// never reports whether a may never be banned: a backend's address or a
// trusted network.
func (t *trustSnap) never(a netip.Addr) bool {
	for _, b := range t.backends {
		if b.Addr() == a {
			return true
		}
	}
	for _, p := range t.neverBan {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func (t *trustSnap) isBackend(a netip.AddrPort) bool {
	return slices.Contains(t.backends, a)
}

// unbannable reports whether src may not be banned: allow-listed, a
// backend's address or trusted.
func (s *Stage) unbannable(src netip.Addr) bool {
	return s.allowed(src) || s.trust.never(src)
}

// refuses reports whether the ban goroutine must not record a ban of a:
// it became allow-listed or trusted while the ban was queued.
func (g *Guard) refuses(a netip.Addr) bool {
	for _, p := range g.allow.Load().prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return g.trust.Load().never(a)
}

// heavy reports whether a source is over its limits or heavier than its
// share: rejected within the last second, or more than half of its burst
// spent. Overload shedding aims at such sources first, so a flood does
// not get a well-behaved caller shed.
func (s *Stage) heavy(e *entry, now int64) bool {
	if e.lastReject != 0 && now-e.lastReject <= quiet {
		return true
	}
	for i := limAll; i <= limRegister; i++ {
		if e.tat[i]-now > s.g.lim[i].tau/2 {
			return true
		}
	}
	return false
}
