package pcapio

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/netip"
	"testing"
	"time"

	"sipedge/afxdp/frame"
)

// TestIPv4Reassembly writes one UDP datagram as three IPv4 fragments, out
// of order, plus an orphan fragment, and reads the datagram back whole.
func TestIPv4Reassembly(t *testing.T) {
	payload := bytes.Repeat([]byte("0123456789abcdef"), 200) // 3200 bytes
	h := frame.Header{Src: netip.MustParseAddrPort("10.0.0.1:5060"), Dst: netip.MustParseAddrPort("10.0.0.2:5060"), ID: 77}
	whole := make([]byte, frame.Headroom(false, false)+len(payload))
	copy(whole[frame.Headroom(false, false):], payload)
	n, err := frame.Encode(whole, &h, len(payload))
	if err != nil {
		t.Fatal(err)
	}
	ip := whole[14:n] // IPv4 header + UDP datagram
	data := ip[20:]
	frag := func(off, end int, more bool) []byte {
		f := append([]byte(nil), whole[:14+20]...)
		fo := uint16(off / 8)
		if more {
			fo |= 0x2000
		}
		binary.BigEndian.PutUint16(f[14+6:], fo)
		binary.BigEndian.PutUint16(f[14+2:], uint16(20+end-off))
		return append(f, data[off:end]...)
	}
	var buf bytes.Buffer
	w, _ := NewWriter(&buf)
	ts := time.Unix(1700000000, 0)
	w.WriteFrame(ts, frag(1480, 2960, true))
	w.WriteFrame(ts, frag(2960, len(data), false))
	orphan := frag(0, 1480, true)
	binary.BigEndian.PutUint16(orphan[14+4:], 78) // another datagram's id
	w.WriteFrame(ts, orphan)
	w.WriteFrame(ts.Add(time.Millisecond), frag(0, 1480, true))
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	r, err := NewReader(&buf, "test")
	if err != nil {
		t.Fatal(err)
	}
	var d Datagram
	if err := r.Next(&d); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(d.Payload, payload) || d.Src != h.Src || d.Dst != h.Dst || d.Record != 4 {
		t.Fatalf("reassembled %d bytes %v -> %v at record %d", len(d.Payload), d.Src, d.Dst, d.Record)
	}
	if err := r.Next(&d); err != io.EOF {
		t.Fatalf("after the datagram: %v", err)
	}
	st := r.Stats()
	if st.Fragments != 4 || st.Reassembled != 1 || st.Lost != 1 || st.Datagrams != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestReaderErrors(t *testing.T) {
	if _, err := NewReader(bytes.NewReader(nil), "empty"); err == nil {
		t.Fatal("an empty file opened")
	}
	if _, err := NewReader(bytes.NewReader([]byte("not a capture at all, no")), "junk"); err == nil {
		t.Fatal("junk opened")
	}
	var buf bytes.Buffer
	w, _ := NewWriter(&buf)
	w.WriteFrame(time.Unix(1, 0), make([]byte, 60))
	w.Flush()
	b := buf.Bytes()[:buf.Len()-10] // truncated record
	r, err := NewReader(bytes.NewReader(b), "cut")
	if err != nil {
		t.Fatal(err)
	}
	var d Datagram
	if err := r.Next(&d); err == nil || err == io.EOF {
		t.Fatalf("truncated record: %v", err)
	}
}
