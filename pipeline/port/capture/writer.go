package capture

import (
	"bufio"
	"fmt"
	"io"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"sipedge/afxdp/frame"
)

// Snaplen is the snapshot length written in the file header: large enough
// that no UDP datagram is ever cut.
const Snaplen = 1 << 18

// Writer writes Ethernet frames into a pcap file (microsecond timestamps,
// the format every tool reads). It buffers: call Flush at the end. Writing
// a frame allocates nothing.
type Writer struct {
	bw  *bufio.Writer
	w   *pcapgo.Writer
	buf []byte // WriteDatagram's frame, made on first use
	n   uint64
}

// NewWriter writes the pcap file header to out.
func NewWriter(out io.Writer) (*Writer, error) {
	bw := bufio.NewWriterSize(out, 1<<16)
	w := pcapgo.NewWriter(bw)
	if err := w.WriteFileHeader(Snaplen, layers.LinkTypeEthernet); err != nil {
		return nil, fmt.Errorf("pcap: write file header: %w", err)
	}
	return &Writer{bw: bw, w: w}, nil
}

// WriteFrame writes one complete Ethernet frame.
func (w *Writer) WriteFrame(ts time.Time, fr []byte) error {
	ci := gopacket.CaptureInfo{Timestamp: ts, CaptureLength: len(fr), Length: len(fr)}
	if err := w.w.WritePacket(ci, fr); err != nil {
		return fmt.Errorf("pcap: write frame %d: %w", w.n+1, err)
	}
	w.n++
	return nil
}

// WriteDatagram encodes payload as a UDP frame with header h and writes it.
func (w *Writer) WriteDatagram(ts time.Time, h *frame.Header, payload []byte) error {
	if len(payload) > frame.MaxUDPPayload {
		return fmt.Errorf("pcap: datagram %d: %w", w.n+1, frame.ErrPayloadTooBig)
	}
	if w.buf == nil {
		w.buf = make([]byte, frame.Headroom(true, true)+frame.MaxUDPPayload)
	}
	hr := frame.Headroom(h.Dst.Addr().Unmap().Is6(), h.Tagged)
	copy(w.buf[hr:], payload)
	n, err := frame.Encode(w.buf, h, len(payload))
	if err != nil {
		return fmt.Errorf("pcap: datagram %d from %v to %v: %w", w.n+1, h.Src, h.Dst, err)
	}
	return w.WriteFrame(ts, w.buf[:n])
}

// Frames is how many frames were written.
func (w *Writer) Frames() uint64 { return w.n }

// Flush writes buffered frames out.
func (w *Writer) Flush() error {
	if err := w.bw.Flush(); err != nil {
		return fmt.Errorf("pcap: flush: %w", err)
	}
	return nil
}
