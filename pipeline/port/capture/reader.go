package capture

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"github.com/google/gopacket"
	"github.com/google/gopacket/layers"
	"github.com/google/gopacket/pcapgo"

	"sipedge/afxdp/frame"
)

// Link types read (tcpdump.org/linktypes.html).
const (
	linkEthernet = 1
	linkRawBSD   = 12 // DLT_RAW as numbered on OpenBSD and in old files
	linkRaw      = 101
	linkSLL      = 113
	linkIPv4     = 228
	linkIPv6     = 229
	linkSLL2     = 276
)

// Datagram is one UDP datagram of a capture. Payload aliases the reader's
// memory and is valid until the next call to Next.
type Datagram struct {
	Payload  []byte
	Src, Dst netip.AddrPort
	// SrcMAC is the sender's link-layer address when the capture has one.
	SrcMAC [6]byte
	// TS is the capture timestamp (of the last fragment when reassembled).
	TS time.Time
	// Record is the 1-based number of the capture record that completed
	// the datagram, to point a user at it in Wireshark.
	Record uint64
}

// Stats counts what the reader saw. Records = Datagrams + Skipped +
// Fragments - Reassembled once the capture is read, whatever was lost.
type Stats struct {
	Records     uint64 // capture records read
	Datagrams   uint64 // UDP datagrams returned by Next
	Skipped     uint64 // records that are not UDP over IP (ARP, TCP, ICMP, ...) or not decodable
	Fragments   uint64 // IP fragments taken in by reassembly
	Reassembled uint64 // datagrams rebuilt from fragments
	Lost        uint64 // datagrams whose fragments never all arrived, overlapped, or were evicted
}

// Reader streams the UDP datagrams of a pcap or pcapng capture. It is for
// one goroutine.
type Reader struct {
	name   string
	closer io.Closer
	next   func() ([]byte, gopacket.CaptureInfo, error)
	ng     *pcapgo.NgReader // nil for pcap
	lt     int              // a pcap file's link type
	reasm  reassembler
	fr     frame.Frame
	stats  Stats
}

// Open opens a capture file for reading.
func Open(path string) (*Reader, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("capture %s: %w (give a readable pcap or pcapng file)", path, err)
	}
	r, err := NewReader(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	r.closer = f
	return r, nil
}

// NewReader reads a capture (pcap or pcapng, told apart by magic) from in;
// name is used in error messages.
func NewReader(in io.Reader, name string) (*Reader, error) {
	r := &Reader{name: name}
	br := bufio.NewReaderSize(in, 1<<16)
	magic, err := br.Peek(4)
	if err != nil {
		return nil, fmt.Errorf("capture %s: read magic: %w (empty file or not a capture)", name, err)
	}
	if binary.LittleEndian.Uint32(magic) == 0x0A0D0D0A {
		ng, err := pcapgo.NewNgReader(br, pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			return nil, fmt.Errorf("capture %s: pcapng: %w", name, err)
		}
		r.next, r.ng = ng.ZeroCopyReadPacketData, ng
		return r, nil
	}
	// The 32-bit link type of the file header is read here because
	// gopacket v1.1.19 truncates it to 8 bits (SLL2 would become 20).
	hdr, _ := br.Peek(24)
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		return nil, fmt.Errorf("capture %s: not a pcap or pcapng file: %w", name, err)
	}
	lt := int(binary.LittleEndian.Uint32(hdr[20:24]))
	if m := binary.BigEndian.Uint32(hdr[0:4]); m == 0xa1b2c3d4 || m == 0xa1b23c4d {
		lt = int(binary.BigEndian.Uint32(hdr[20:24]))
	}
	lt &= 0x03ffffff // the high bits carry FCS information (pcap format, LinkType field)
	r.next, r.lt = pr.ZeroCopyReadPacketData, lt
	return r, nil
}

// linkType is the link type of the record ci describes. (A method, not a
// func field: a CaptureInfo passed to a func value escapes, an allocation
// per record.)
func (r *Reader) linkType(ci *gopacket.CaptureInfo) int {
	if r.ng == nil {
		return r.lt
	}
	lt := r.ng.LinkType()
	if len(ci.AncillaryData) > 0 {
		if l, ok := ci.AncillaryData[0].(layers.LinkType); ok {
			lt = l
		}
	}
	// gopacket v1.1.19 keeps link types in 8 bits: 20 is what remains of
	// SLL2 (276); link type 20 itself is unassigned.
	if lt == linkSLL2&0xff {
		return linkSLL2
	}
	return int(lt)
}

// Name is the capture's name as given to Open or NewReader.
func (r *Reader) Name() string { return r.name }

// Stats returns the counters so far.
func (r *Reader) Stats() Stats { return r.stats }

// Close closes the file opened by Open; a Reader from NewReader leaves its
// io.Reader to the caller.
func (r *Reader) Close() error {
	if r.closer == nil {
		return nil
	}
	err := r.closer.Close()
	r.closer = nil
	return err
}

// Next fills d with the next UDP datagram, skipping (and counting)
// everything else. It returns io.EOF at the end of the capture, having
// counted the datagrams whose fragments never all arrived as lost, or an
// error naming the record that could not be read.
func (r *Reader) Next(d *Datagram) error {
	for {
		data, ci, err := r.next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				r.stats.Lost += uint64(r.reasm.drain())
				return io.EOF
			}
			return fmt.Errorf("capture %s: record %d unreadable (truncated or corrupt capture; the records before it were read): %w",
				r.name, r.stats.Records+1, err)
		}
		r.stats.Records++
		if r.decode(r.linkType(&ci), data, d) {
			d.TS = ci.Timestamp
			d.Record = r.stats.Records
			r.stats.Datagrams++
			return nil
		}
	}
}

func isIP(et uint16) bool { return et == 0x0800 || et == 0x86DD }

// decode finds the UDP datagram in one record, feeding fragments to the
// reassembler. A record it returns false for is counted in Skipped or
// Fragments.
func (r *Reader) decode(lt int, b []byte, d *Datagram) bool {
	var ip []byte
	d.SrcMAC = [6]byte{}
	switch lt {
	case linkEthernet:
		err := frame.Decode(b, &r.fr)
		if err == nil {
			d.SrcMAC = r.fr.SrcMAC
			return r.take(d)
		}
		if err != frame.ErrFragment && err != frame.ErrNotUDP {
			r.stats.Skipped++
			return false
		}
		d.SrcMAC = r.fr.SrcMAC
		ip = b[r.fr.L3:]
	case linkSLL:
		if len(b) < 16 || !isIP(binary.BigEndian.Uint16(b[14:16])) {
			r.stats.Skipped++
			return false
		}
		if binary.BigEndian.Uint16(b[4:6]) == 6 {
			copy(d.SrcMAC[:], b[6:12])
		}
		ip = b[16:]
	case linkSLL2:
		if len(b) < 20 || !isIP(binary.BigEndian.Uint16(b[0:2])) {
			r.stats.Skipped++
			return false
		}
		if b[11] == 6 {
			copy(d.SrcMAC[:], b[12:18])
		}
		ip = b[20:]
	case linkRaw, linkRawBSD, linkIPv4, linkIPv6:
		ip = b
	default:
		r.stats.Skipped++
		return false
	}
	err := frame.DecodeIP(ip, &r.fr)
	if err == nil {
		return r.take(d)
	}
	var f fragment
	if (err != frame.ErrFragment && err != frame.ErrNotUDP) || !parseFragment(ip, &f) {
		r.stats.Skipped++
		return false
	}
	r.stats.Fragments++
	whole, lost := r.reasm.add(&f)
	r.stats.Lost += uint64(lost)
	if whole == nil {
		return false
	}
	if frame.DecodeIP(whole, &r.fr) != nil {
		r.stats.Skipped++ // reassembled, but not a UDP datagram
		return false
	}
	r.stats.Reassembled++
	return r.take(d)
}

func (r *Reader) take(d *Datagram) bool {
	d.Payload = r.fr.Payload
	d.Src = r.fr.SrcAddrPort()
	d.Dst = r.fr.DstAddrPort()
	return true
}
