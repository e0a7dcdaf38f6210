package sipcore

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"time"
)

// Stateless digest nonces. A nonce is base64url (no padding) of
//
//	ts (8 bytes, big-endian Unix nanoseconds) || MAC (16 bytes)
//	MAC = first 16 bytes of HMAC-SHA-256(K, ts || src || SHA-256(Call-ID) || realm)
//
// where K is derived from the cluster secret, so that any node holding the
// secret can check a nonce another node issued, and no node keeps per-nonce
// state. The realm is under the MAC so a nonce from one realm is refused in
// another; the source address (16 bytes, IPv4 mapped) and the Call-ID are
// under it so that credentials captured on the wire cannot be replayed from
// another address or in another call. Replay of the same nonce in the same
// call from the same address is left to the caller, which tracks nc per
// nonce; expiry bounds what it has to remember.

// Nonce format constants.
const (
	// NonceLen is the length of every nonce NonceKey.Append writes.
	NonceLen = 32
	// NonceSkew is how far in the future a nonce's timestamp may be and still
	// be accepted: clocks of the nodes sharing a secret differ a little.
	NonceSkew = 5 * time.Second
	// MinNonceSecret is the shortest secret ValidateNonceSecret accepts.
	MinNonceSecret = 16
)

const (
	nonceRawLen = 8 + nonceMACLen
	nonceMACLen = 16
)

// nonceKeyLabel separates the key of nonces from anything else derived from
// the same cluster secret (branch keys, for instance).
const nonceKeyLabel = "sipedge digest nonce v1"

// NonceResult is the verdict of NonceKey.Check.
type NonceResult uint8

// Nonce verdicts. The zero value is NonceInvalid, so that a forgotten
// assignment fails closed.
const (
	// NonceInvalid: forged, malformed, issued for another realm or under
	// another secret, or from the future beyond NonceSkew. Answer with a
	// fresh challenge (stale=false).
	NonceInvalid NonceResult = iota
	// NonceValid: issued by a node sharing the secret, for this realm,
	// within maxAge.
	NonceValid
	// NonceStale: authentic but older than maxAge. If the response is
	// otherwise right, answer with a fresh challenge carrying stale=true so
	// the client retries without asking the user (RFC 7616 3.3).
	NonceStale
)

func (r NonceResult) String() string {
	switch r {
	case NonceInvalid:
		return "invalid"
	case NonceValid:
		return "valid"
	case NonceStale:
		return "stale"
	}
	return "NonceResult(" + strconv.Itoa(int(r)) + ")"
}

// NonceKey issues and checks stateless nonces. It holds only the HMAC pads
// derived from the secret and is never written after NewNonceKey, so one key
// is safe for concurrent use by every core without locks.
type NonceKey struct {
	// The HMAC key already XORed with ipad and opad (RFC 2104): keeping
	// them lets Check and Append run HMAC as two sha256.Sum256 calls over
	// stack buffers, where crypto/hmac would allocate per use.
	ipad, opad [sha256.BlockSize]byte
}

// NewNonceKey derives a nonce key from the cluster secret. Every node that
// must accept another's nonces needs the same secret. Validate the secret
// first with ValidateNonceSecret: a short secret makes forgeable nonces.
func NewNonceKey(secret []byte) *NonceKey {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(nonceKeyLabel))
	k := m.Sum(nil)
	var nk NonceKey
	for i := range nk.ipad {
		nk.ipad[i], nk.opad[i] = 0x36, 0x5c
	}
	for i, b := range k {
		nk.ipad[i] ^= b
		nk.opad[i] ^= b
	}
	return &nk
}

// ValidateNonceSecret reports whether secret is fit to key nonces.
func ValidateNonceSecret(secret []byte) error {
	if len(secret) < MinNonceSecret {
		return errors.New("sip digest: nonce secret is " + strconv.Itoa(len(secret)) +
			" bytes; set at least " + strconv.Itoa(MinNonceSecret) +
			" random bytes (32 recommended), the same on every node")
	}
	return nil
}

// NonceBinding is what a nonce is bound to besides its realm and time: the
// request's source address (the port is left out: NATs change it between
// a challenge and its answer) and its Call-ID.
type NonceBinding struct {
	Src    netip.Addr
	CallID []byte
}

// nonceBindLen is the bound part of the MAC input: the 16-byte address and
// the SHA-256 of the Call-ID, whose length is unbounded.
const nonceBindLen = 16 + sha256.Size

// mac computes the truncated HMAC-SHA-256 of ts || binding || realm. ok is
// false for a realm longer than MaxDigestField, which no credential can
// carry anyway.
func (k *NonceKey) mac(ts []byte, realm []byte, b *NonceBinding) (out [nonceMACLen]byte, ok bool) {
	if len(realm) > MaxDigestField {
		return out, false
	}
	var in [sha256.BlockSize + 8 + nonceBindLen + MaxDigestField]byte
	copy(in[:], k.ipad[:])
	n := sha256.BlockSize
	n += copy(in[n:], ts)
	a16 := b.Src.As16()
	n += copy(in[n:], a16[:])
	cid := sha256.Sum256(b.CallID)
	n += copy(in[n:], cid[:])
	n += copy(in[n:], realm)
	inner := sha256.Sum256(in[:n])
	var o [sha256.BlockSize + sha256.Size]byte
	copy(o[:], k.opad[:])
	copy(o[sha256.BlockSize:], inner[:])
	full := sha256.Sum256(o[:])
	copy(out[:], full[:])
	return out, true
}

// Append appends a new nonce for realm and b, issued at now, to dst
// (NonceLen bytes, safe inside a quoted-string). It allocates nothing when dst has
// NonceLen bytes of spare capacity. A realm longer than MaxDigestField gets
// no nonce (dst is returned unchanged): configuration must refuse such a
// realm, which ParseCredentials would refuse too.
func (k *NonceKey) Append(dst []byte, now time.Time, realm []byte, b NonceBinding) []byte {
	if k == nil {
		return dst
	}
	var raw [nonceRawLen]byte
	binary.BigEndian.PutUint64(raw[:8], uint64(now.UnixNano()))
	m, ok := k.mac(raw[:8], realm, &b)
	if !ok {
		return dst
	}
	copy(raw[8:], m[:])
	return base64.RawURLEncoding.AppendEncode(dst, raw[:])
}

// Check tells whether nonce was issued by a key with the same secret, for
// realm and b (the same source address and Call-ID), and not longer than maxAge before now (maxAge <= 0: every authentic
// nonce is stale). An authentic nonce is Stale once expired, forever: a
// replay after expiry never becomes Valid. It allocates nothing and runs in
// constant time in the MAC comparison.
func (k *NonceKey) Check(nonce, realm []byte, b NonceBinding, now time.Time, maxAge time.Duration) NonceResult {
	if k == nil || len(nonce) != NonceLen {
		return NonceInvalid
	}
	var raw [nonceRawLen]byte
	n, err := base64.RawURLEncoding.Decode(raw[:], nonce)
	if err != nil || n != nonceRawLen {
		return NonceInvalid
	}
	m, ok := k.mac(raw[:8], realm, &b)
	if !ok || subtle.ConstantTimeCompare(m[:], raw[8:]) != 1 {
		return NonceInvalid
	}
	issued := int64(binary.BigEndian.Uint64(raw[:8]))
	age := now.UnixNano() - issued
	if age < -int64(NonceSkew) {
		return NonceInvalid
	}
	if maxAge <= 0 || age > int64(maxAge) {
		return NonceStale
	}
	return NonceValid
}

// NonceIssued returns the issue time (Unix nanoseconds) written in a nonce
// of NonceLen bytes, 0 when it is not one. It does not authenticate: call
// it only on a nonce Check accepted.
func NonceIssued(nonce []byte) int64 {
	var raw [nonceRawLen]byte
	if len(nonce) != NonceLen {
		return 0
	}
	if n, err := base64.RawURLEncoding.Decode(raw[:], nonce); err != nil || n != nonceRawLen {
		return 0
	}
	return int64(binary.BigEndian.Uint64(raw[:8]))
}
