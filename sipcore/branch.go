package sipcore

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
)

// Key is the cluster secret in the form the builders use. Branches and
// To-tags made with one Key are recognised by every node holding the same
// secret, so a response may come back through any node of the cluster.
type Key struct {
	k0, k1 uint64
}

// NewKey derives the builders' key from the cluster secret ([node] secret in
// config). The secret should be at least 16 random bytes.
func NewKey(secret []byte) Key {
	sum := sha256.Sum256(secret)
	return Key{binary.LittleEndian.Uint64(sum[0:8]), binary.LittleEndian.Uint64(sum[8:16])}
}

// Branch layout: magic cookie, our marker, then 32 hex digits:
// transaction hash (16), loop hash (8), MAC over both (8).
const (
	rfc3261Cookie = "z9hG4bK"
	branchMarker  = "z9hG4bKsE"
	// BranchLen is the length of every branch sipedge makes.
	BranchLen = len(branchMarker) + 32
)

const hexDigits = "0123456789abcdef"

func putHex(dst []byte, v uint64, digits int) {
	for i := digits - 1; i >= 0; i-- {
		dst[i] = hexDigits[v&0xf]
		v >>= 4
	}
}

func parseHex(b []byte) (uint64, bool) {
	var v uint64
	for _, c := range b {
		d, ok := hexVal(c)
		if !ok {
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}

// txHash identifies the server transaction the request belongs to
// (RFC 3261 16.11): a keyed hash of the incoming RFC 3261 branch and sent-by,
// or, for RFC 2543 peers, of the fields that identify the transaction. The
// method is left out on purpose so that a CANCEL (and the ACK of a non-2xx)
// gets the same branch as its INVITE.
func (k *Key) txHash(m *Msg) uint64 {
	var h sipHash
	h.init(k.k0, k.k1)
	h.writeByte('T')
	if m.NVia > 0 {
		v := &m.Vias[0]
		br := m.B(v.Branch)
		if bytes.HasPrefix(br, []byte(rfc3261Cookie)) {
			h.write(br)
			h.writeByte(0)
			h.write(m.B(v.Host))
			h.writeUint64(uint64(v.Port))
			return h.sum64()
		}
		h.write(m.B(v.Value))
	}
	h.writeByte(0)
	h.write(m.B(m.To.Tag))
	h.writeByte(0)
	h.write(m.B(m.From.Tag))
	h.writeByte(0)
	h.write(m.B(m.CallID))
	h.writeUint64(uint64(m.CSeq))
	h.write(m.B(m.RURI.Raw))
	h.writeByte(0)
	if i := m.ProxyAuthorization; i >= 0 {
		h.write(m.B(m.Headers[i].Value))
	}
	if i := m.ProxyRequire; i >= 0 {
		h.write(m.B(m.Headers[i].Value))
	}
	return h.sum64()
}

// loopHash covers what stays the same when a request comes back to us
// unchanged (RFC 3261 16.3 item 4): a spiral changes the Request-URI, a loop
// does not.
func (k *Key) loopHash(m *Msg) uint32 {
	var h sipHash
	h.init(k.k0, k.k1)
	h.writeByte('L')
	h.write(m.B(m.RURI.Raw))
	h.writeByte(0)
	h.write(m.B(m.From.Tag))
	h.writeByte(0)
	h.write(m.B(m.To.Tag))
	h.writeByte(0)
	h.write(m.B(m.CallID))
	h.writeUint64(uint64(m.CSeq))
	return uint32(h.sum64())
}

func (k *Key) mac(tx uint64, loop uint32) uint32 {
	// 'M' in the top byte keeps the MAC's input domain apart from the
	// other hashes made with the same key.
	return uint32(sipHash2(k.k0, k.k1, tx, uint64(loop)|uint64('M')<<56))
}

// AppendBranch writes the stateless branch for forwarding request m: the
// same request (and its retransmissions, and its CANCEL) always gets the
// same branch, on every node sharing the key.
func (k *Key) AppendBranch(dst []byte, m *Msg) []byte {
	var b [BranchLen]byte
	k.putBranch(b[:], m)
	return append(dst, b[:]...)
}

func (k *Key) putBranch(b []byte, m *Msg) {
	tx, loop := k.txHash(m), k.loopHash(m)
	n := copy(b, branchMarker)
	putHex(b[n:], tx, 16)
	putHex(b[n+16:], uint64(loop), 8)
	putHex(b[n+24:], uint64(k.mac(tx, loop)), 8)
}

// ownBranch reports whether br was made with this key, and returns its loop hash.
func (k *Key) ownBranch(br []byte) (loop uint32, ok bool) {
	if len(br) != BranchLen || !bytes.HasPrefix(br, []byte(branchMarker)) {
		return 0, false
	}
	h := br[len(branchMarker):]
	tx, ok1 := parseHex(h[:16])
	lp, ok2 := parseHex(h[16:24])
	mac, ok3 := parseHex(h[24:32])
	if !ok1 || !ok2 || !ok3 || uint32(mac) != k.mac(tx, uint32(lp)) {
		return 0, false
	}
	return uint32(lp), true
}

// IsOwnBranch reports whether branch was made by a node holding this key.
func (k *Key) IsOwnBranch(branch []byte) bool {
	_, ok := k.ownBranch(branch)
	return ok
}

// Looped reports whether request m has already passed through a node of
// this cluster unchanged: one of its Vias carries our branch with the loop
// hash of this very request (RFC 3261 16.3 item 4). A spiral (the request
// came back with a new Request-URI) is not a loop.
func (k *Key) Looped(m *Msg) bool {
	var loop uint32
	computed := false
	for i := 0; i < m.NVia; i++ {
		lp, ok := k.ownBranch(m.B(m.Vias[i].Branch))
		if !ok {
			continue
		}
		if !computed {
			loop, computed = k.loopHash(m), true
		}
		if lp == loop {
			return true
		}
	}
	return false
}

// toTagLen is the length of the To-tags of stateless responses.
const toTagLen = 16

// putToTag writes the To-tag of a stateless response to m: derived from the
// request, so the retransmission of a request gets the same tag and the
// UAC sees one dialog, with no state kept.
func (k *Key) putToTag(b []byte, m *Msg) {
	var h sipHash
	h.init(k.k0, k.k1)
	h.writeByte('G')
	h.write(m.B(m.CallID))
	h.writeByte(0)
	h.write(m.B(m.From.Tag))
	h.writeUint64(uint64(m.CSeq))
	if m.NVia > 0 {
		h.write(m.B(m.Vias[0].Branch))
	}
	putHex(b, h.sum64(), toTagLen)
}

// IsOwnToTag reports whether m (an ACK, typically) carries the To-tag this
// cluster put in a stateless response to its transaction: the ACK of a
// non-2xx response has the INVITE's Call-ID, From tag, CSeq number and top
// branch (RFC 3261 17.1.1.3), so the tag is derived again and compared,
// with no state kept. Such an ACK ends at the proxy that answered.
func (k *Key) IsOwnToTag(m *Msg) bool {
	if m.To.Tag.Len != toTagLen {
		return false
	}
	var t [toTagLen]byte
	k.putToTag(t[:], m)
	return string(t[:]) == string(m.B(m.To.Tag))
}
