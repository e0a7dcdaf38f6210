package pipeline

// The timer wheel is a simple hashed wheel (Varghese & Lauck, scheme 6) with
// a 1 ms tick and 1024 buckets. Why these numbers: the timers a worker runs
// are park deadlines (tens to hundreds of ms, against SIP's T1 = 500 ms) and
// expiries of seconds; 1 ms is finer than anything SIP cares about and coarse
// enough that one loop iteration (microseconds) rarely crosses more than one
// tick. 1024 buckets cover ~1 s in one revolution, so park deadlines land in
// their bucket on the first pass; longer timers carry their absolute due tick and
// are skipped until their due tick comes round. A hierarchical wheel would avoid those
// skips, but with a few long timers per core it would not pay for itself.
//
// Nodes live in one fixed array and are linked by index, so schedule, cancel
// and advance allocate nothing and cancel is O(1).

const (
	wheelBits    = 10
	wheelBuckets = 1 << wheelBits
	wheelMask    = wheelBuckets - 1
	// TimerTick is the wheel's resolution in nanoseconds.
	TimerTick = int64(1_000_000)
)

// timerID names a scheduled timer; noTimer is none.
type timerID int32

const noTimer timerID = -1

type timerNode struct {
	prev, next timerID
	due        int64 // absolute tick
	bucket     int32 // -1 when free
	kind       uint8
	arg        uint64
}

// timerWheel runs on one worker only; nothing in it is shared.
type timerWheel struct {
	nodes   []timerNode
	free    timerID
	buckets [wheelBuckets]timerID
	tick    int64 // the last tick processed
	fire    func(kind uint8, arg uint64)
	n       int
	// minDue is the earliest due tick of the live timers while minOK; a
	// cancel or fire of that timer clears minOK and next rescans.
	minDue int64
	minOK  bool
}

// next returns the earliest due tick of the live timers, for the worker's
// sleep timeout. It scans the nodes only after the earliest one went.
func (w *timerWheel) next() (int64, bool) {
	if w.n == 0 {
		return 0, false
	}
	if !w.minOK {
		w.minDue = -1
		for i := range w.nodes {
			n := &w.nodes[i]
			if n.bucket >= 0 && (w.minDue < 0 || n.due < w.minDue) {
				w.minDue = n.due
			}
		}
		w.minOK = true
	}
	return w.minDue, true
}

func newTimerWheel(capacity int, now int64, fire func(kind uint8, arg uint64)) *timerWheel {
	w := &timerWheel{nodes: make([]timerNode, capacity), tick: now / TimerTick, fire: fire}
	for i := range w.buckets {
		w.buckets[i] = noTimer
	}
	w.free = noTimer
	for i := capacity - 1; i >= 0; i-- {
		w.nodes[i] = timerNode{next: w.free, bucket: -1}
		w.free = timerID(i)
	}
	return w
}

// schedule arranges for fire(kind, arg) at or after time at (ns), never
// before the next tick. It returns noTimer when every node is in use.
func (w *timerWheel) schedule(at int64, kind uint8, arg uint64) timerID {
	id := w.free
	if id == noTimer {
		return noTimer
	}
	n := &w.nodes[id]
	w.free = n.next
	t := at / TimerTick
	if at%TimerTick != 0 {
		t++ // never early
	}
	if t <= w.tick {
		t = w.tick + 1
	}
	b := int32(t & wheelMask)
	n.due, n.bucket, n.kind, n.arg = t, b, kind, arg
	n.prev, n.next = noTimer, w.buckets[b]
	if n.next != noTimer {
		w.nodes[n.next].prev = id
	}
	w.buckets[b] = id
	w.n++
	if w.n == 1 || (w.minOK && t < w.minDue) {
		w.minDue, w.minOK = t, true
	}
	return id
}

func (w *timerWheel) unlink(id timerID) {
	n := &w.nodes[id]
	if n.due == w.minDue {
		w.minOK = false
	}
	if n.prev != noTimer {
		w.nodes[n.prev].next = n.next
	} else {
		w.buckets[n.bucket] = n.next
	}
	if n.next != noTimer {
		w.nodes[n.next].prev = n.prev
	}
	n.bucket = -1
	n.next = w.free
	w.free = id
	w.n--
}

// cancel stops a scheduled timer. The caller must hold an id only while its
// timer is live (it forgets the id when the timer fires).
func (w *timerWheel) cancel(id timerID) {
	if id == noTimer || w.nodes[id].bucket < 0 {
		return
	}
	w.unlink(id)
}

// advance fires every timer due at or before now (ns). fire may schedule
// new timers (they land on a later tick) but must not cancel other ones.
func (w *timerWheel) advance(now int64) {
	target := now / TimerTick
	if target <= w.tick {
		return
	}
	if target-w.tick > wheelBuckets {
		// A long stall: one sweep of every bucket finds everything due,
		// instead of walking each missed tick.
		for b := 0; b < wheelBuckets; b++ {
			w.fireBucket(b, target)
		}
		w.tick = target
		return
	}
	for w.tick < target {
		w.tick++
		w.fireBucket(int(w.tick&wheelMask), w.tick)
	}
}

func (w *timerWheel) fireBucket(b int, upTo int64) {
	id := w.buckets[b]
	for id != noTimer {
		n := &w.nodes[id]
		next := n.next
		if n.due <= upTo {
			kind, arg := n.kind, n.arg
			w.unlink(id)
			w.fire(kind, arg)
		}
		id = next
	}
}
