package guard

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sort"
	"time"
)

// Run is the ban goroutine: it takes the workers' ban requests off their
// rings, records them for the operator and hands them to the Banner (a
// syscall each: never on a worker). It prunes lapsed bans every second and
// returns when ctx is done, after a last drain.
func (g *Guard) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	lastBelow := g.now()
	for {
		select {
		case <-ctx.Done():
			g.drain()
			return
		case <-g.wake:
			g.drain()
		case <-tick.C:
			g.drain()
			// The Banner's lapsed entries go when the registry's do (the
			// same TTLs), or once a minute for what the registry refused.
			if g.prune() > 0 || g.now()-lastBelow > int64(time.Minute) {
				g.pruneBelow()
				lastBelow = g.now()
			}
		}
	}
}

// Drain processes the pending ban requests now (tests, shutdown).
func (g *Guard) Drain() { g.drain() }

func (g *Guard) drain() {
	var r banReq
	for _, s := range g.stageList() {
		for s.out.Pop(&r) {
			ttl := time.Duration(r.until - g.now())
			if ttl <= 0 {
				continue
			}
			// Allow-listed or trusted since the worker queued it: the
			// ban does not land (the worker skips its own check for an
			// allow-listed source, and lifts nothing else by itself).
			if g.refuses(r.addr) {
				g.refusedAllowed.Add(1)
				g.Unban(r.addr) // the worker that queued it enforces it: lift it there
				continue
			}
			if !g.record(r) {
				g.refusedFull.Add(1)
				continue
			}
			g.banBelow(r.addr, ttl)
		}
	}
}

func (g *Guard) banBelow(a netip.Addr, ttl time.Duration) {
	if g.cfg.Banner == nil {
		return
	}
	if err := g.cfg.Banner.Ban(a, ttl); err != nil {
		g.xdpErrors.Add(1)
		msg := err.Error()
		g.lastErr.Store(&msg)
		return
	}
	g.xdpBans.Add(1)
}

func (g *Guard) unbanBelow(a netip.Addr) {
	u, ok := g.cfg.Banner.(Unbanner)
	if !ok {
		return
	}
	if err := u.Unban(a); err != nil {
		g.xdpErrors.Add(1)
		msg := err.Error()
		g.lastErr.Store(&msg)
		return
	}
	g.xdpUnbans.Add(1)
}

// record puts r in the registry; false when the registry is full of live
// bans. An operator ban is not shortened or relabelled by an automatic one.
func (g *Guard) record(r banReq) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	cur := g.registry[r.addr]
	if cur == nil && len(g.registry) >= g.cfg.MaxRegistry && g.pruneLocked() == 0 {
		return false
	}
	if cur == nil || cur.reason != ReasonOperator || cur.until < r.until {
		g.setLocked(r.addr, r.reason, r.until)
	}
	return true
}

// setLocked records a ban; the caller holds g.mu.
func (g *Guard) setLocked(a netip.Addr, r Reason, until int64) {
	g.registry[a] = &banRecord{reason: r, until: until}
	if g.nextExpiry == 0 || until < g.nextExpiry {
		g.nextExpiry = until
	}
}

// prune deletes the lapsed bans from the registry and returns how many.
func (g *Guard) prune() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.pruneLocked()
}

// pruneLocked walks the registry only when its earliest ban has lapsed,
// so the walk (under the operator's lock, never the workers') happens
// once per expiry, not every second.
func (g *Guard) pruneLocked() int {
	now := g.now()
	if g.nextExpiry == 0 || now < g.nextExpiry {
		return 0
	}
	n := 0
	g.nextExpiry = 0
	for a, r := range g.registry {
		if r.until <= now {
			delete(g.registry, a)
			n++
		} else if g.nextExpiry == 0 || r.until < g.nextExpiry {
			g.nextExpiry = r.until
		}
	}
	return n
}

// Pruner is the optional part of a Banner that deletes lapsed bans
// (afxdp.Program.PruneBans).
type Pruner interface {
	PruneBans() (int, error)
}

func (g *Guard) pruneBelow() {
	p, ok := g.cfg.Banner.(Pruner)
	if !ok {
		return
	}
	if _, err := p.PruneBans(); err != nil {
		g.xdpErrors.Add(1)
		msg := err.Error()
		g.lastErr.Store(&msg)
	}
}

// BanInfo describes one ban in force.
type BanInfo struct {
	Addr   netip.Addr
	Reason Reason
	// Left is the time until the ban lapses.
	Left time.Duration
	// Dropped counts the packets the workers dropped for this ban (not
	// those the XDP program dropped: see afxdp.Program.Counters).
	Dropped uint64
}

// Bans lists the bans in force, by address: the automatic bans of every
// worker and the operator's.
func (g *Guard) Bans() []BanInfo {
	now := g.now()
	byAddr := map[netip.Addr]*BanInfo{}
	var v banView
	for _, s := range g.stageList() {
		for i := range s.bans.s {
			if !s.bans.s[i].read(&v) || v.until <= now {
				continue
			}
			a := v.key.addr()
			bi := byAddr[a]
			if bi == nil {
				bi = &BanInfo{Addr: a, Reason: v.reason}
				byAddr[a] = bi
			}
			if l := time.Duration(v.until - now); l > bi.Left {
				bi.Left = l
			}
			bi.Dropped += v.dropped
		}
	}
	g.mu.Lock()
	for a, r := range g.registry {
		if r.until <= now {
			continue
		}
		bi := byAddr[a]
		if bi == nil {
			bi = &BanInfo{Addr: a}
			byAddr[a] = bi
		}
		bi.Reason = r.reason
		if l := time.Duration(r.until - now); l > bi.Left {
			bi.Left = l
		}
	}
	g.mu.Unlock()
	out := make([]BanInfo, 0, len(byAddr))
	for _, bi := range byAddr {
		out = append(out, *bi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Addr.Less(out[j].Addr) })
	return out
}

// Ban bans addr for ttl on every worker and in the Banner. An allow-listed
// address cannot be banned: remove it from the allow-list first.
func (g *Guard) Ban(addr netip.Addr, ttl time.Duration) error {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return errors.New("guard: cannot ban the zero address: give an IPv4 or IPv6 address")
	}
	if ttl <= 0 {
		return fmt.Errorf("guard: ban of %v needs a positive duration, got %v", addr, ttl)
	}
	for _, p := range g.allow.Load().prefixes {
		if p.Contains(addr) {
			return fmt.Errorf("guard: %v is in the allow-list (%v): remove it from the allow-list before banning it", addr, p)
		}
	}
	until := g.now() + int64(ttl)
	g.mu.Lock()
	err := g.command(command{op: cmdBan, reason: ReasonOperator, key: g.sourceKey(addr), until: until})
	if err == nil {
		g.setLocked(addr, ReasonOperator, until)
	}
	g.mu.Unlock()
	if err != nil {
		return fmt.Errorf("guard: banning %v: %w", addr, err)
	}
	g.banBelow(addr, ttl)
	return nil
}

// Unban lifts addr's ban, automatic or not, on every worker and in the
// Banner. Lifting a ban that does not exist is not an error.
func (g *Guard) Unban(addr netip.Addr) error {
	addr = addr.Unmap()
	if !addr.IsValid() {
		return errors.New("guard: cannot unban the zero address")
	}
	g.mu.Lock()
	err := g.command(command{op: cmdUnban, key: g.sourceKey(addr)})
	delete(g.registry, addr)
	g.mu.Unlock()
	g.unbanBelow(addr)
	if err != nil {
		return fmt.Errorf("guard: unbanning %v: %w", addr, err)
	}
	return nil
}

// command sends c to every worker; the caller holds g.mu, which makes the
// operator the single producer of each command ring.
func (g *Guard) command(c command) error {
	var busy []int
	for _, s := range g.stageList() {
		if !s.in.Push(&c) {
			busy = append(busy, s.id)
		}
	}
	if len(busy) > 0 {
		return fmt.Errorf("the command rings of workers %v are full (are those workers running?): retry shortly", busy)
	}
	return nil
}

// AllowList returns the allow-list.
func (g *Guard) AllowList() []netip.Prefix {
	return append([]netip.Prefix(nil), g.allow.Load().prefixes...)
}

// Allow adds p to the allow-list (workers see it from their next batch)
// and lifts the bans of the addresses it covers.
func (g *Guard) Allow(p netip.Prefix) error {
	if !p.IsValid() {
		return errors.New("guard: allow-list entry is not a valid prefix: give a CIDR such as 192.0.2.0/24")
	}
	p = normPrefix(p)
	g.mu.Lock()
	cur := g.allow.Load().prefixes
	for _, q := range cur {
		if q == p {
			g.mu.Unlock()
			return nil
		}
	}
	next := append(append([]netip.Prefix(nil), cur...), p)
	g.allow.Store(&allowSnap{prefixes: next})
	var lift []netip.Addr
	for a := range g.registry {
		if p.Contains(a) {
			lift = append(lift, a)
		}
	}
	g.mu.Unlock()
	for _, a := range lift {
		if err := g.Unban(a); err != nil {
			return err
		}
	}
	return nil
}

// normPrefix writes a v4-mapped IPv6 prefix as the IPv4 prefix it is, since
// sources are compared unmapped.
func normPrefix(p netip.Prefix) netip.Prefix {
	if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
	}
	return p.Masked()
}

// Disallow removes p from the allow-list; false if it was not there.
func (g *Guard) Disallow(p netip.Prefix) bool {
	if !p.IsValid() {
		return false
	}
	p = normPrefix(p)
	g.mu.Lock()
	defer g.mu.Unlock()
	cur := g.allow.Load().prefixes
	for i, q := range cur {
		if q == p {
			next := append(append([]netip.Prefix(nil), cur[:i]...), cur[i+1:]...)
			g.allow.Store(&allowSnap{prefixes: next})
			return true
		}
	}
	return false
}

// Stats are the guard's counters summed over workers, as last published
// (each worker publishes at the start of every batch).
type Stats struct {
	// Passed went on to the next stage; Allowed did so as allow-listed.
	Passed, Allowed uint64
	// Drops, Rejects (503 sent) and Bans (bans issued) by reason.
	Drops, Rejects, Bans [numReasons]uint64
	// BanRingFull: ban requests the ban goroutine never saw (its ring was
	// full); BanTableFull: bans a worker could not store.
	BanRingFull, BanTableFull uint64
	// Evictions: sources whose state was replaced by a new source.
	Evictions uint64
	// AuthFailures reported by the auth stage.
	AuthFailures uint64
	// OverloadBatches counts full receive batches; Overloaded the workers
	// shedding load now.
	OverloadBatches uint64
	Overloaded      int
	// XDPBans, XDPUnbans and XDPErrors count Banner calls.
	XDPBans, XDPUnbans, XDPErrors uint64
	// BansSpared: bans the workers did not issue (allow-listed, backend or
	// trusted source); ShedSpared: new requests an overloaded worker let
	// through from sources within their limits.
	BansSpared, ShedSpared uint64
	// RegistryFull and RegistryAllowed count ban requests the ban
	// goroutine refused: the registry (MaxRegistry) was full of live bans,
	// or the source was allow-listed or trusted by the time it arrived.
	RegistryFull, RegistryAllowed uint64
	// LastError is the Banner's last error, if any.
	LastError string
}

// Stats sums the workers' published counters. Safe from any goroutine.
func (g *Guard) Stats() Stats {
	var st Stats
	for _, s := range g.stageList() {
		c := s.cnt.Load
		st.Passed += c(cPassed)
		st.Allowed += c(cAllowed)
		st.BanRingFull += c(cBanRingFull)
		st.BanTableFull += c(cBanTableFull)
		st.Evictions += c(cEvictions)
		st.AuthFailures += c(cAuthFailures)
		st.OverloadBatches += c(cOverloadBatches)
		for r := 1; r < int(numReasons); r++ {
			st.Drops[r] += s.drops.Load(r - 1)
			st.Rejects[r] += c(cRejectBase + r - 1)
			st.Bans[r] += c(cBanBase + r - 1)
		}
		st.Overloaded += int(c(cOverloaded))
		st.BansSpared += c(cBansSpared)
		st.ShedSpared += c(cShedSpared)
	}
	st.RegistryFull, st.RegistryAllowed = g.refusedFull.Load(), g.refusedAllowed.Load()
	st.XDPBans, st.XDPUnbans, st.XDPErrors = g.xdpBans.Load(), g.xdpUnbans.Load(), g.xdpErrors.Load()
	if p := g.lastErr.Load(); p != nil {
		st.LastError = *p
	}
	return st
}
