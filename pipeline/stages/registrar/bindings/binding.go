package bindings

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Binding is one contact of an address-of-record.
type Binding struct {
	// ID names the binding within its AOR: the +sip.instance and reg-id
	// when the UA gave them (RFC 5626 6), the Contact URI otherwise.
	ID string `json:"-"`
	// Contact is the Contact URI, without its angle brackets.
	Contact string `json:"c"`
	// Q is the q-value in thousandths (1000 when the UA gave none).
	Q int `json:"q"`
	// Path are the Path URIs (RFC 3327) in the order a request visits
	// them: the route set towards the contact.
	Path []string `json:"p,omitempty"`
	// Received is the address the REGISTER came from ("ip:port").
	Received string `json:"r"`
	// Node is the address of the edge that received the REGISTER and so
	// holds the flow ("ip:port").
	Node string `json:"n"`
	// NAT says the REGISTER came from another address than the Contact's
	// (the UA is behind NAT): requests go to Received, through Node.
	NAT bool `json:"x,omitempty"`
	// Instance and RegID are RFC 5626's, empty and 0 when absent.
	Instance string `json:"i,omitempty"`
	RegID    int64  `json:"g,omitempty"`

	// CallID and CSeq are those of the REGISTER that last wrote the
	// binding (RFC 3261 10.3 step 7 orders updates by them).
	CallID string `json:"-"`
	CSeq   uint32 `json:"-"`
	// Registered is when the binding was last written (not refreshed).
	Registered time.Time `json:"-"`
	// Expires is when the binding expires.
	Expires time.Time `json:"-"`
}

// payload is what identifies the binding's content: a refresh whose
// payload is unchanged only moves the expiry.
func (b *Binding) payload() string {
	p, _ := json.Marshal(b) // a struct of strings and ints: cannot fail
	return string(p)
}

// encode is the stored value: Call-ID, CSeq and write time (the fields a
// refresh compares or keeps) ahead of the payload.
func (b *Binding) encode() string {
	return b.CallID + "\n" + strconv.FormatUint(uint64(b.CSeq), 10) + "\n" + strconv.FormatInt(b.Registered.UnixMilli(), 10) + "\n" + b.payload()
}

func decode(id, v string, ttl time.Duration, now time.Time) (Binding, error) {
	parts := strings.SplitN(v, "\n", 4)
	if len(parts) != 4 {
		return Binding{}, fmt.Errorf("bindings: binding %q: malformed stored value", id)
	}
	var b Binding
	if err := json.Unmarshal([]byte(parts[3]), &b); err != nil {
		return Binding{}, fmt.Errorf("bindings: binding %q: %w", id, err)
	}
	cs, err1 := strconv.ParseUint(parts[1], 10, 32)
	reg, err2 := strconv.ParseInt(parts[2], 10, 64)
	if err1 != nil || err2 != nil {
		return Binding{}, fmt.Errorf("bindings: binding %q: malformed CSeq or time", id)
	}
	b.ID, b.CallID, b.CSeq = id, parts[0], uint32(cs)
	b.Registered = time.UnixMilli(reg)
	b.Expires = now.Add(ttl)
	return b, nil
}

// Change is one Contact of a REGISTER: the binding it asks for and for
// how long (0 removes it).
type Change struct {
	Binding Binding
	Expires time.Duration
}

// Update is one REGISTER's worth of changes to an AOR, applied all or
// nothing.
type Update struct {
	AOR    string
	CallID string
	CSeq   uint32
	// Star removes every binding (Contact: * with Expires: 0).
	Star bool
	// Changes are the Contacts; none with Star, none for a fetch.
	Changes []Change
	// MaxContacts bounds the AOR's bindings (0: no bound); EvictOldest
	// makes room by removing the oldest instead of refusing.
	MaxContacts int
	EvictOldest bool
	// Keep is how long the AOR's index may outlive its longest binding
	// (a refresh extends the index only when it falls short).
	Keep time.Duration
	Now  time.Time
}

// Outcome says how an Update ended.
type Outcome uint8

// Outcomes.
const (
	// Applied: the bindings are stored; Result.Bindings are the AOR's.
	Applied Outcome = iota
	// OutOfOrder: a binding has the same Call-ID and a CSeq at least as
	// high (RFC 3261 10.3 step 7): nothing changed, answer 500.
	OutOfOrder
	// TooMany: the AOR would exceed MaxContacts: nothing changed, answer
	// 403 (as Kamailio does).
	TooMany
)

// Result is what Apply did.
type Result struct {
	Outcome  Outcome
	Bindings []Binding
	// Written, Refreshed, Removed and Evicted count the bindings by what
	// happened to them: only Written costs a rewrite. Expired counts
	// bindings found expired and forgotten.
	Written, Refreshed, Removed, Evicted, Expired int
}

// Store keeps the bindings.
type Store interface {
	// Apply applies u atomically and returns the AOR's bindings after it.
	Apply(ctx context.Context, u *Update) (Result, error)
	// Lookup returns the live bindings of aor (none: nil, nil).
	Lookup(ctx context.Context, aor string) ([]Binding, error)
	// Notify registers f to be called with the AOR whose bindings changed
	// or expired, from any goroutine, and all("") when changes may have
	// been missed (a reconnection).
	Notify(f func(aor string))
}

// ErrUnavailable is returned while the store cannot be reached.
var ErrUnavailable = errors.New("bindings: the binding store is unreachable (REGISTERs get 503 with Retry-After; cached locations keep working)")
