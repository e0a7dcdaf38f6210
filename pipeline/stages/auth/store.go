package auth

import (
	"context"
	"errors"
	"net/netip"

	"sipedge/sipcore"
)

// Entry is one user's stored credentials: HA1 values only, as lowercase hex.
// It is a fixed-size value so that it moves through caches and park answers
// without allocating.
type Entry struct {
	// Has says which HA1 values are set (HasMD5, HasSHA256).
	Has uint8
	// MD5 is hex(MD5(user:realm:password)), for MD5 and MD5-sess.
	MD5 [32]byte
	// SHA256 is hex(SHA-256(user:realm:password)), for SHA-256 and
	// SHA-256-sess.
	SHA256 [64]byte
}

// Bits of Entry.Has.
const (
	HasMD5 uint8 = 1 << iota
	HasSHA256
)

// SetHA1 stores a hex HA1 for alg's family after checking it
// (sipcore.CheckHA1); upper-case hex is lowered.
func (e *Entry) SetHA1(alg sipcore.Algorithm, ha1 []byte) error {
	if err := sipcore.CheckHA1(alg, ha1); err != nil {
		return err
	}
	switch alg {
	case sipcore.AlgMD5, sipcore.AlgMD5Sess:
		lowerCopy(e.MD5[:], ha1)
		e.Has |= HasMD5
	case sipcore.AlgSHA256, sipcore.AlgSHA256Sess:
		lowerCopy(e.SHA256[:], ha1)
		e.Has |= HasSHA256
	default:
		return errors.New("auth: only MD5 and SHA-256 HA1 values are stored; " + alg.String() + " is not")
	}
	return nil
}

// HA1 returns the stored HA1 for alg, or nil when the entry has none for
// its family.
func (e *Entry) HA1(alg sipcore.Algorithm) []byte {
	switch alg {
	case sipcore.AlgMD5, sipcore.AlgMD5Sess:
		if e.Has&HasMD5 != 0 {
			return e.MD5[:]
		}
	case sipcore.AlgSHA256, sipcore.AlgSHA256Sess:
		if e.Has&HasSHA256 != 0 {
			return e.SHA256[:]
		}
	}
	return nil
}

func lowerCopy(dst, src []byte) {
	for i, c := range src {
		if 'A' <= c && c <= 'F' {
			c += 'a' - 'A'
		}
		dst[i] = c
	}
}

// ErrNotFound is what Store.Lookup returns for a user the store does not
// have: the stage caches it negatively and answers 403.
var ErrNotFound = errors.New("auth: no such user in the credential store")

// Store is where credentials live. Lookup runs on a helper goroutine, never
// on a worker: it may block (bounded by ctx) and allocate.
type Store interface {
	// Name labels the store in logs and errors ("file", "redis").
	Name() string
	// Lookup returns the user's entry in realm, ErrNotFound when the store
	// answered that there is none, or another error when it could not
	// answer (the message then gets the fallback, and the user is not
	// cached negatively).
	Lookup(ctx context.Context, realm, user string) (Entry, error)
}

// Peeker is implemented by stores that hold every entry in memory and can
// answer on the hot path: lock-free, without allocation, without blocking.
// The stage then never parks for them and does not cache their entries.
type Peeker interface {
	// Peek returns the entry of user in realm, or nil. The entry must stay
	// unchanged for as long as the store is in use (replace, don't edit).
	Peek(realm, user []byte) *Entry
}

// Invalidator is told when stored credentials change. Auth implements it.
// Calls may come from any goroutine.
type Invalidator interface {
	// Invalidate forgets what is cached for user in realm.
	Invalidate(realm, user []byte)
	// InvalidateAll forgets every cached entry (a reload, a reconnection
	// after which changes may have been missed).
	InvalidateAll()
}

// Notifier is implemented by stores that push changes (Redis invalidations,
// file reloads) instead of being polled. New registers the Auth with it.
type Notifier interface {
	Notify(Invalidator)
}

// FailureSink is told about every failed authentication (403, malformed or
// forged credentials) so that the guard can slow down or ban the source.
// now is pipeline.Ctx.Now. It is called on the worker's goroutine, on the
// hot path: it must not block or allocate.
type FailureSink interface {
	AuthFailed(src netip.Addr, now int64)
}
