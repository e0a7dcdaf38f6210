package bindings

import (
	"context"
	"sort"
	"sync"
	"time"
)

// Memory is a Store in this process's memory: one node's registrar, and
// the reference the Redis store's script is tested against.
type Memory struct {
	mu     sync.Mutex
	aors   map[string]map[string]*memBinding
	notify []func(string)
}

type memBinding struct {
	b   Binding
	exp time.Time
}

// NewMemory returns an empty store.
func NewMemory() *Memory { return &Memory{aors: map[string]map[string]*memBinding{}} }

// Notify implements Store.
func (s *Memory) Notify(f func(aor string)) {
	s.mu.Lock()
	s.notify = append(s.notify, f)
	s.mu.Unlock()
}

// live returns aor's unexpired bindings, forgetting expired ones, and how
// many it forgot.
func (s *Memory) live(aor string, now time.Time) (map[string]*memBinding, int) {
	cur := s.aors[aor]
	x := 0
	for id, mb := range cur {
		if !now.Before(mb.exp) {
			delete(cur, id)
			x++
		}
	}
	return cur, x
}

// Apply implements Store. Listeners hear of a change after the lock is
// released (they may call back into the store).
func (s *Memory) Apply(_ context.Context, u *Update) (Result, error) {
	res, changed := s.apply(u)
	if changed {
		s.mu.Lock()
		fs := s.notify
		s.mu.Unlock()
		for _, f := range fs {
			f(u.AOR)
		}
	}
	return res, nil
}

func (s *Memory) apply(u *Update) (Result, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, expired := s.live(u.AOR, u.Now)
	if cur == nil {
		cur = map[string]*memBinding{}
	}
	res := Result{Expired: expired}
	switch order(u, func(id string) (string, uint32, bool) {
		mb, ok := cur[id]
		if !ok {
			return "", 0, false
		}
		return mb.b.CallID, mb.b.CSeq, true
	}, ids(cur)) {
	case late:
		res.Outcome = OutOfOrder
		res.Bindings = sorted(cur)
		return res, false
	case again:
		res.Bindings = sorted(cur)
		return res, false
	}
	evict, ok := makeRoom(u, len(cur), func(id string) bool { _, ok := cur[id]; return ok }, oldest(cur))
	if !ok {
		res.Outcome = TooMany
		res.Bindings = sorted(cur)
		return res, false
	}
	changed := false
	for _, id := range evict {
		delete(cur, id)
		res.Evicted++
		changed = true
	}
	if u.Star {
		for id := range cur {
			delete(cur, id)
			res.Removed++
			changed = true
		}
	}
	for _, ch := range u.Changes {
		id := ch.Binding.ID
		mb, ok := cur[id]
		switch {
		case ch.Expires <= 0:
			if ok {
				delete(cur, id)
				res.Removed++
				changed = true
			}
		case ok && mb.b.CallID == u.CallID && mb.b.payload() == ch.Binding.payload():
			mb.exp = u.Now.Add(ch.Expires)
			res.Refreshed++
			changed = true
		default:
			b := ch.Binding
			b.CallID, b.CSeq, b.Registered = u.CallID, u.CSeq, u.Now.Truncate(time.Millisecond)
			cur[id] = &memBinding{b: b, exp: u.Now.Add(ch.Expires)}
			res.Written++
			changed = true
		}
	}
	if len(cur) == 0 {
		delete(s.aors, u.AOR)
	} else {
		s.aors[u.AOR] = cur
	}
	res.Bindings = sorted(cur)
	return res, changed || expired > 0
}

// Lookup implements Store.
func (s *Memory) Lookup(_ context.Context, aor string) ([]Binding, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, _ := s.live(aor, time.Now())
	return sorted(cur), nil
}

func ids(cur map[string]*memBinding) []string {
	out := make([]string, 0, len(cur))
	for id := range cur {
		out = append(out, id)
	}
	return out
}

func oldest(cur map[string]*memBinding) []string {
	out := ids(cur)
	sort.Slice(out, func(i, j int) bool {
		a, b := cur[out[i]].b.Registered, cur[out[j]].b.Registered
		if !a.Equal(b) {
			return a.Before(b)
		}
		return out[i] < out[j]
	})
	return out
}

func sorted(cur map[string]*memBinding) []Binding {
	if len(cur) == 0 {
		return nil
	}
	out := make([]Binding, 0, len(cur))
	for _, mb := range cur {
		b := mb.b
		b.Expires = mb.exp
		out = append(out, b)
	}
	Sort(out)
	return out
}

// Sort orders bindings as the stateless edge picks them: highest q, then
// the most recently written, then by ID.
func Sort(bs []Binding) {
	sort.Slice(bs, func(i, j int) bool {
		a, b := &bs[i], &bs[j]
		if a.Q != b.Q {
			return a.Q > b.Q
		}
		if !a.Registered.Equal(b.Registered) {
			return a.Registered.After(b.Registered)
		}
		return a.ID < b.ID
	})
}

// Orders of a REGISTER against the bindings it touches.
const (
	inOrder = iota
	late    // same Call-ID, lower CSeq: refused (RFC 3261 10.3 step 7)
	again   // same Call-ID and CSeq: a retransmission, already applied
)

// order applies RFC 3261 10.3 step 7 to every binding u touches (all of
// them for Contact: *): one with u's Call-ID and a higher CSeq aborts the
// whole request. One with the same CSeq means u is a retransmission of the
// request that wrote it (the stateless edge has no transaction to absorb
// it): it changes nothing and gets the same 200, not a 500.
func order(u *Update, get func(id string) (callID string, cseq uint32, ok bool), all []string) int {
	touched := all
	if !u.Star {
		touched = nil
		for _, ch := range u.Changes {
			touched = append(touched, ch.Binding.ID)
		}
	}
	res := inOrder
	for _, id := range touched {
		ci, cs, ok := get(id)
		switch {
		case !ok || ci != u.CallID:
		case cs > u.CSeq:
			return late
		case cs == u.CSeq:
			res = again
		}
	}
	return res
}

// makeRoom decides which bindings to evict so that the AOR stays within
// MaxContacts (oldest first, never one u itself touches), or reports
// false when it cannot or may not.
func makeRoom(u *Update, n int, has func(id string) bool, oldestFirst []string) ([]string, bool) {
	if u.MaxContacts <= 0 || u.Star {
		return nil, true
	}
	touched := map[string]bool{}
	for _, ch := range u.Changes {
		id := ch.Binding.ID
		touched[id] = true
		switch {
		case ch.Expires <= 0 && has(id):
			n--
		case ch.Expires > 0 && !has(id):
			n++
		}
	}
	if n <= u.MaxContacts {
		return nil, true
	}
	if !u.EvictOldest {
		return nil, false
	}
	var evict []string
	for _, id := range oldestFirst {
		if n <= u.MaxContacts {
			break
		}
		if !touched[id] {
			evict = append(evict, id)
			n--
		}
	}
	return evict, n <= u.MaxContacts
}
