package afxdp

import (
	"sync/atomic"
	"unsafe"
)

// ring is one of the four single-producer single-consumer rings shared with
// the kernel. The producer and consumer indexes live in the mapping and are
// written by the other side concurrently, so every access to them is an
// atomic load or store: Go's atomics order the descriptor writes before the
// index store the kernel reads (and the index load before descriptor reads),
// which plain loads and stores do not guarantee.
//
// cachedProd and cachedCons are this side's copies, so a batch touches the
// shared cache lines once per call, not once per descriptor.
type ring struct {
	producer *uint32
	consumer *uint32
	flags    *uint32
	mask     uint32
	size     uint32
	// cachedProd/cachedCons: for a ring we produce into (fill, tx),
	// cachedProd is ours and cachedCons the last value read from the kernel;
	// for a ring we consume (rx, completion), the other way round.
	cachedProd uint32
	cachedCons uint32
	mem        []byte
}

func newRing(mem []byte, off ringOffsets, size uint32) ring {
	base := unsafe.Pointer(&mem[0])
	return ring{
		producer: (*uint32)(unsafe.Add(base, off.producer)),
		consumer: (*uint32)(unsafe.Add(base, off.consumer)),
		flags:    (*uint32)(unsafe.Add(base, off.flags)),
		mask:     size - 1,
		size:     size,
		mem:      mem,
	}
}

type ringOffsets struct{ producer, consumer, desc, flags uintptr }

// freeSlots says how many entries this side may produce, refreshing the
// kernel's consumer index only when the cached value says the ring is short.
func (r *ring) freeSlots(want uint32) uint32 {
	free := r.size - (r.cachedProd - r.cachedCons)
	if free >= want {
		return free
	}
	r.cachedCons = atomic.LoadUint32(r.consumer)
	return r.size - (r.cachedProd - r.cachedCons)
}

// publish makes n produced entries visible to the kernel.
func (r *ring) publish(n uint32) {
	r.cachedProd += n
	atomic.StoreUint32(r.producer, r.cachedProd)
}

// available says how many entries the kernel has produced for us to consume.
func (r *ring) available(want uint32) uint32 {
	avail := r.cachedProd - r.cachedCons
	if avail >= want {
		return avail
	}
	r.cachedProd = atomic.LoadUint32(r.producer)
	return r.cachedProd - r.cachedCons
}

// release gives n consumed entries back to the kernel.
func (r *ring) release(n uint32) {
	r.cachedCons += n
	atomic.StoreUint32(r.consumer, r.cachedCons)
}

// needsWakeup reports the kernel's XDP_RING_NEED_WAKEUP flag.
func (r *ring) needsWakeup() bool {
	return atomic.LoadUint32(r.flags)&xdpRingNeedWakeup != 0
}

const xdpRingNeedWakeup = 1 // XDP_RING_NEED_WAKEUP

func loadU32(p *uint32) uint32 { return atomic.LoadUint32(p) }
