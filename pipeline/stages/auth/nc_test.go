package auth

import (
	"fmt"
	"testing"
)

// The nonce-count table refuses a used nc, takes a higher one and a
// retransmission of the same transaction within its window, and when full
// forgets the oldest nonce without ever trusting a forgotten one again.
func TestNCTable(t *testing.T) {
	tab := newNCTable(ncWays) // one set
	nonce := func(i int) []byte { return fmt.Appendf(nil, "nonce-%02d-xxxxxxxxxxxxxxxxxxxxxx", i) }
	const sec = int64(1e9)
	if v := tab.use(nonce(1), 10, 1, 7, 0, 0); v != ncFresh {
		t.Fatalf("first use: %v", v)
	}
	if v := tab.use(nonce(1), 10, 1, 7, sec, 0); v != ncRetransmit {
		t.Fatalf("same nc, same transaction: %v, want a retransmission", v)
	}
	if v := tab.use(nonce(1), 10, 1, 8, sec, 0); v != ncReplay {
		t.Fatalf("same nc, another transaction: %v, want a replay", v)
	}
	if v := tab.use(nonce(1), 10, 1, 7, ncRetransmitWindow+1, 0); v != ncReplay {
		t.Fatalf("same transaction after the window: %v, want a replay", v)
	}
	if v := tab.use(nonce(1), 10, 2, 9, 2*sec, 0); v != ncFresh {
		t.Fatalf("next nc: %v", v)
	}
	// Fill the set, then one more: the oldest (issued 10) is forgotten
	// and never trusted again, nor is any nonce issued before it.
	for i := 2; i <= ncWays; i++ {
		if v := tab.use(nonce(i), int64(10+i), 1, 1, 3*sec, 0); v != ncFresh {
			t.Fatalf("nonce %d: %v", i, v)
		}
	}
	if v := tab.use(nonce(9), 30, 1, 1, 4*sec, 0); v != ncFresh {
		t.Fatalf("a nonce newer than all: %v", v)
	}
	if v := tab.use(nonce(1), 10, 3, 1, 5*sec, 0); v != ncReplay {
		t.Fatalf("a forgotten nonce: %v, want refused", v)
	}
	if v := tab.use(nonce(20), 5, 1, 1, 5*sec, 0); v != ncReplay {
		t.Fatalf("an unseen nonce older than the forgotten one: %v, want refused", v)
	}
	// Entries of stale nonces are free again, without raising the floor.
	if v := tab.use(nonce(21), 40, 1, 1, 6*sec, 25); v != ncFresh || tab.floor != 10 {
		t.Fatalf("a new nonce over stale entries: %v, floor %d", v, tab.floor)
	}
	n21 := nonce(21)
	if n := testing.AllocsPerRun(100, func() { tab.use(n21, 40, 1, 1, 6*sec, 25) }); n != 0 {
		t.Errorf("use allocates %v times", n)
	}
}
