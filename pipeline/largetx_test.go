package pipeline_test

import (
	"bytes"
	"net/netip"
	"testing"

	"sipedge/pipeline"
	"sipedge/pipeline/memport"
	"sipedge/pipeline/port"
)

// largePort is a memport whose frames are small, with large buffers aside
// (port.LargeAllocator), as the afxdp port has.
type largePort struct {
	*memport.Port
	big      [2][]byte
	free     []uint64
	sentBig  [][]byte
	allocBig int
}

const bigHandle = 1 << 40

func (p *largePort) AllocLarge(pk *port.Packet, n int) bool {
	if len(p.free) == 0 || n > len(p.big[0]) {
		return false
	}
	h := p.free[len(p.free)-1]
	p.free = p.free[:len(p.free)-1]
	p.allocBig++
	*pk = port.Packet{Payload: p.big[h-bigHandle][:0], Handle: h}
	return true
}

func (p *largePort) Transmit(tx []port.Packet) (int, error) {
	small := tx[:0]
	for _, t := range tx {
		if t.Handle >= bigHandle {
			p.sentBig = append(p.sentBig, append([]byte(nil), t.Payload...))
			p.free = append(p.free, t.Handle)
			continue
		}
		small = append(small, t)
	}
	n, err := p.Port.Transmit(small)
	return n + len(tx) - len(small), err
}

// TestTxBufLarge: a stage answering a message larger than the port's
// frames leave room for (its length plus TxSlack) gets one of the port's
// large buffers, holds the whole message, and it goes out; a small
// message keeps a frame; the frame taken first is not lost (it is the
// worker's spare).
func TestTxBufLarge(t *testing.T) {
	mp := memport.New(8, 4096)
	p := &largePort{Port: mp, big: [2][]byte{make([]byte, 9216), make([]byte, 9216)}, free: []uint64{bigHandle, bigHandle + 1}}
	to := netip.MustParseAddrPort("192.0.2.1:5060")
	large := bytes.Repeat([]byte("L"), 3900) // fits a frame to receive, not with the slack to build
	mp.In = []memport.Datagram{dgram(caller, "small"), {Payload: large, Src: caller}, dgram(caller, "small again")}
	var caps []int
	fwd := stageFunc{"fwd", func(c *pipeline.Ctx) pipeline.Verdict {
		b := c.TxBuf()
		caps = append(caps, cap(b))
		return c.Send(to, copy(b, c.Buf))
	}}
	w, err := pipeline.NewWorker(p, pipeline.Config{Key: &testKey, Core: -1}, []pipeline.StageMaker{fwd})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := w.Poll(); err != nil {
			break
		}
	}
	if len(caps) != 3 || caps[0] != 4096 || caps[1] != 9216 || caps[2] != 4096 {
		t.Fatalf("TxBuf capacities %v: want a frame, a large buffer, a frame", caps)
	}
	if p.allocBig != 1 || len(p.sentBig) != 1 || !bytes.Equal(p.sentBig[0], large) {
		t.Fatalf("%d large buffers taken, %d sent: want the %d-byte message sent whole from one", p.allocBig, len(p.sentBig), len(large))
	}
	if len(mp.Sent) != 2 {
		t.Fatalf("%d small messages sent, want 2", len(mp.Sent))
	}
	if n := mp.FramesInUse(); n > 1 {
		t.Fatalf("%d frames in use after the run: more than the spare, one leaked", n)
	}
}
