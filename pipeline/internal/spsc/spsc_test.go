package spsc

import (
	"sync"
	"testing"
)

func TestRingOrderAndBounds(t *testing.T) {
	r := New[int](3) // rounded up to 4
	if r.Cap() != 4 {
		t.Fatalf("Cap %d, want 4", r.Cap())
	}
	for i := 0; i < 4; i++ {
		v := i
		if !r.Push(&v) {
			t.Fatalf("push %d refused", i)
		}
	}
	v := 9
	if r.Push(&v) || r.Slot() != nil {
		t.Fatal("a full ring took a fifth entry")
	}
	for i := 0; i < 4; i++ {
		if !r.Pop(&v) || v != i {
			t.Fatalf("pop %d: got %d", i, v)
		}
	}
	if r.Pop(&v) || r.Peek() != nil || !r.Empty() {
		t.Fatal("an empty ring gave an entry")
	}
}

// Two goroutines, one on each side, under the race detector: every entry
// arrives once and in order.
func TestRingConcurrent(t *testing.T) {
	r := New[[4]uint64](64)
	const n = 200000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := uint64(0); i < n; {
			if s := r.Slot(); s != nil {
				*s = [4]uint64{i, i, i, i}
				r.Commit()
				i++
			}
		}
	}()
	for i := uint64(0); i < n; {
		e := r.Peek()
		if e == nil {
			continue
		}
		if *e != [4]uint64{i, i, i, i} {
			t.Fatalf("entry %d: %v", i, *e)
		}
		r.Advance()
		i++
	}
	wg.Wait()
}

func TestRingAllocatesNothing(t *testing.T) {
	r := New[[32]byte](8)
	var v [32]byte
	if a := testing.AllocsPerRun(1000, func() { r.Push(&v); r.Pop(&v) }); a != 0 {
		t.Fatalf("%v allocations per push and pop", a)
	}
}
