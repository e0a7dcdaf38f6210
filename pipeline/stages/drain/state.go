package drain

import (
	"sync"
	"sync/atomic"
)

// State is a node's drain switch and the time each worker last saw call
// traffic. The operator side (admin API, signals) flips it; workers read
// the switch once per batch and each stores only its own clock, on its own
// cache line.
type State struct {
	on atomic.Bool

	mu     sync.Mutex // clocks
	clocks []*paddedClock
}

type paddedClock struct {
	t atomic.Int64
	_ [56]byte
}

// NewState returns a State not draining.
func NewState() *State { return &State{} }

// Set turns draining on or off and reports whether it changed.
func (s *State) Set(on bool) bool { return s.on.Swap(on) != on }

// Draining reports whether the node drains.
func (s *State) Draining() bool { return s.on.Load() }

func (s *State) clock(worker int) *atomic.Int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.clocks) <= worker {
		s.clocks = append(s.clocks, &paddedClock{})
	}
	return &s.clocks[worker].t
}

// LastActivity is the latest time (pipeline.Nanotime) any worker saw a
// call's message, 0 when none has.
func (s *State) LastActivity() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var t int64
	for _, c := range s.clocks {
		t = max(t, c.t.Load())
	}
	return t
}
