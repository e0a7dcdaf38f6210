package ng

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"os"
	"strconv"
	"time"
)

// ErrTimeout says the relay did not answer before the deadline, after
// every retransmission.
var ErrTimeout = errors.New("ng: no reply from the relay before the deadline")

// ErrReply says the reply was not an ng reply to our request.
var ErrReply = errors.New("ng: malformed reply")

// Client sends ng requests from one UDP socket and waits for their
// replies. It is used by one goroutine at a time: each request is sent,
// retransmitted with the same cookie every Retry, and answered before the
// next one starts.
type Client struct {
	conn   *net.UDPConn
	prefix [48]byte // cookie prefix: unique per client, so two clients' cookies never collide at the relay
	np     int
	seq    uint64
	cookie []byte
	rx     []byte
	// Retry is the retransmission interval (default 100ms).
	Retry time.Duration
	heard time.Time
}

// Heard is when a datagram last came from the relay of a Do, whatever
// its cookie: a late reply to an earlier request still says the relay is
// alive, only slow.
func (c *Client) Heard() time.Time { return c.heard }

var clientSeq struct{ n uint64 }

// NewClient opens a client on an ephemeral UDP port of local's address
// (local may be the zero AddrPort: any address of either family). id is
// folded into every cookie (the worker and helper numbers), so that
// relays shared by several clients and nodes cache replies per request.
func NewClient(local netip.AddrPort, id string) (*Client, error) {
	// No address: a dual-stack socket, so relays of either family work.
	laddr := &net.UDPAddr{}
	if local.IsValid() {
		laddr = net.UDPAddrFromAddrPort(local)
	}
	conn, err := net.ListenUDP("udp", laddr)
	if err != nil {
		return nil, err
	}
	c := &Client{conn: conn, rx: make([]byte, 65536), cookie: make([]byte, 0, 64), Retry: 100 * time.Millisecond}
	// The pid and the local port make cookies unique across restarts and
	// processes; id separates the clients of one process; the random part
	// keeps an off-path sender who spoofs the relay's address from
	// guessing the cookie a reply must echo.
	var rnd [8]byte
	rand.Read(rnd[:])
	p := strconv.AppendUint(nil, binary.LittleEndian.Uint64(rnd[:]), 36)
	p = append(p, '.')
	p = strconv.AppendInt(p, int64(os.Getpid())%1000000, 36)
	p = append(p, '.')
	p = strconv.AppendUint(p, uint64(conn.LocalAddr().(*net.UDPAddr).Port), 36)
	p = append(p, '.')
	p = append(p, id...)
	c.np = copy(c.prefix[:], p)
	return c, nil
}

// LocalAddr is the client's socket address.
func (c *Client) LocalAddr() netip.AddrPort { return c.conn.LocalAddr().(*net.UDPAddr).AddrPort() }

// Close closes the socket.
func (c *Client) Close() error { return c.conn.Close() }

// Begin starts a request in e: a fresh cookie and the space after it.
// The caller then encodes the dictionary.
func (c *Client) Begin(e *Enc) {
	c.seq++
	c.cookie = append(c.cookie[:0], c.prefix[:c.np]...)
	c.cookie = append(c.cookie, '.')
	c.cookie = strconv.AppendUint(c.cookie, c.seq, 36)
	e.Reset(c.cookie)
	e.B = append(e.B, ' ')
}

// Do sends req (begun with Begin) to relay and decodes the reply's
// dictionary into d, retransmitting until deadline. Replies to earlier
// requests (late ones, or duplicates of a retransmission) are skipped.
func (c *Client) Do(relay netip.AddrPort, req []byte, deadline time.Time, d *Decoded) error {
	next := time.Now()
	for {
		now := time.Now()
		if !now.Before(deadline) {
			return ErrTimeout
		}
		if !now.Before(next) {
			if _, err := c.conn.WriteToUDPAddrPort(req, relay); err != nil {
				return err
			}
			next = now.Add(c.Retry)
		}
		wait := next
		if deadline.Before(wait) {
			wait = deadline
		}
		if err := c.conn.SetReadDeadline(wait); err != nil {
			return err
		}
		n, from, err := c.conn.ReadFromUDPAddrPort(c.rx)
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if from.Port() != relay.Port() || from.Addr().Unmap() != relay.Addr().Unmap() {
			continue
		}
		c.heard = time.Now()
		b := c.rx[:n]
		sp := bytes.IndexByte(b, ' ')
		if sp < 0 || !bytes.Equal(b[:sp], c.cookie) {
			continue
		}
		if err := d.Decode(b[sp+1:]); err != nil {
			return err
		}
		if d.Len() == 0 || d.Toks[0].Kind != KDict {
			return ErrReply
		}
		return nil
	}
}

// Result returns the reply's "result" ("ok", "pong", "error", ...) and,
// for errors, its "error-reason".
func Result(d *Decoded) (result, reason []byte) {
	return d.Str(0, "result"), d.Str(0, "error-reason")
}
