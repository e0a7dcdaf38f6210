package capture

import (
	"bytes"
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"

	"sipedge/afxdp/frame"
)

// TestWriteDatagram writes datagrams of both families and reads them back
// with their timestamps; an oversized payload is refused with a clear error.
func TestWriteDatagram(t *testing.T) {
	var buf bytes.Buffer
	w, err := NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	hs := []frame.Header{
		{Src: netip.MustParseAddrPort("192.0.2.1:5060"), Dst: netip.MustParseAddrPort("192.0.2.2:5080")},
		{Src: netip.MustParseAddrPort("[2001:db8::1]:5060"), Dst: netip.MustParseAddrPort("[2001:db8::2]:5080"), SrcMAC: [6]byte{2, 4, 4, 4, 4, 4}},
	}
	t0 := time.Unix(1700000000, 123000)
	for i := range hs {
		if err := w.WriteDatagram(t0.Add(time.Duration(i)*time.Second), &hs[i], []byte("SIP/2.0 200 OK\r\n")); err != nil {
			t.Fatal(err)
		}
	}
	err = w.WriteDatagram(t0, &hs[0], make([]byte, frame.MaxUDPPayload+1))
	if !errors.Is(err, frame.ErrPayloadTooBig) || !strings.Contains(err.Error(), "datagram 3") {
		t.Fatalf("oversized datagram: %v", err)
	}
	if err := w.Flush(); err != nil || w.Frames() != 2 {
		t.Fatalf("Flush: %v, %d frames", err, w.Frames())
	}
	got, _ := readAll(t, buf.Bytes())
	if len(got) != 2 {
		t.Fatalf("read back %d datagrams", len(got))
	}
	for i, g := range got {
		if g.Src != hs[i].Src || g.Dst != hs[i].Dst || g.SrcMAC != hs[i].SrcMAC || !g.TS.Equal(t0.Add(time.Duration(i)*time.Second)) {
			t.Fatalf("datagram %d: %v -> %v %x at %v", i, g.Src, g.Dst, g.SrcMAC, g.TS)
		}
	}
}

func TestWriteFrameAllocs(t *testing.T) {
	w, _ := NewWriter(&bytes.Buffer{})
	fr := udpFrame(t, "192.0.2.1:1", "192.0.2.2:2", "x")
	ts := time.Unix(1, 0)
	if a := testing.AllocsPerRun(100, func() { _ = w.WriteFrame(ts, fr) }); a != 0 {
		t.Fatalf("WriteFrame allocates %v times, want 0", a)
	}
}
