package bindings

import (
	"strings"

	"sipedge/sipcore"
)

// Domains are the SIP domains the cluster is the registrar of, and how
// an address-of-record is keyed. Read-only after NewDomains: every worker
// shares it.
type Domains struct {
	names  [][]byte
	isNode func(host []byte) bool
	noHost bool
}

// DomainOptions complete NewDomains.
type DomainOptions struct {
	// IgnoreDomain keys bindings by user alone ("sip:alice"), as
	// Kamailio's use_domain = 0: sip:alice@example.com, sip:alice@edge-a
	// and sip:alice@edge-b are then one AOR. Only for a single-domain
	// cluster.
	IgnoreDomain bool
	// IsNode, with IgnoreDomain, makes the node's own names local too (a
	// phone set up with the edge's address as its domain); otherwise a
	// request for user@node stays the dispatcher's.
	IsNode func(host []byte) bool
}

// NewDomains returns the set of names (case-insensitive).
func NewDomains(names []string, opt ...DomainOptions) *Domains {
	d := &Domains{}
	for _, n := range names {
		d.names = append(d.names, []byte(strings.ToLower(n)))
	}
	for _, o := range opt {
		d.isNode, d.noHost = o.IsNode, o.IgnoreDomain
	}
	return d
}

// Local reports whether host is one of the domains or, with IgnoreDomain
// and IsNode, the node itself. It allocates nothing.
func (d *Domains) Local(host []byte) bool {
	return d.Has(host) || (d.noHost && d.isNode != nil && d.isNode(host))
}

// AppendAOR is the package's AppendAOR, without the host when the
// domains were made with IgnoreDomain.
func (d *Domains) AppendAOR(dst, buf []byte, u *sipcore.URI) ([]byte, bool) {
	out, ok := AppendAOR(dst, buf, u)
	if !ok || !d.noHost {
		return out, ok
	}
	at := len(dst) + 4 + int(u.User.Len) // "sip:" user
	return out[:at], true
}

// CanonicalAOR is AppendAOR for an AOR an operator typed
// ("sip:alice@Example.com"): what the admin API looks up.
func (d *Domains) CanonicalAOR(aor string) string {
	user, host, _ := strings.Cut(strings.TrimPrefix(strings.TrimPrefix(aor, "sips:"), "sip:"), "@")
	if d.noHost {
		return "sip:" + user
	}
	return "sip:" + user + "@" + strings.ToLower(host)
}

// Has reports whether host is one of the domains. It allocates nothing.
func (d *Domains) Has(host []byte) bool {
	for _, n := range d.names {
		if len(n) != len(host) {
			continue
		}
		eq := true
		for i, c := range host {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			if c != n[i] {
				eq = false
				break
			}
		}
		if eq {
			return true
		}
	}
	return false
}

// MaxAOR bounds an address-of-record's length.
const MaxAOR = 256

// AppendAOR appends the canonical address-of-record of u (a sip or sips
// URI of buf) to dst: "sip:" user "@" lower-case host, without port or
// parameters (RFC 3261 10.3 step 5), so that sip: and sips: and any
// spelling of the host name one binding set. It reports false when u has
// no user, is not sip/sips, holds a brace (the key's hash tag) or the
// result would be longer than MaxAOR.
func AppendAOR(dst, buf []byte, u *sipcore.URI) ([]byte, bool) {
	if (u.Scheme != sipcore.SchemeSIP && u.Scheme != sipcore.SchemeSIPS) || u.User.Empty() || u.Host.Empty() {
		return dst, false
	}
	user, host := buf[u.User.Off:u.User.End()], buf[u.Host.Off:u.Host.End()]
	if 4+len(user)+1+len(host) > MaxAOR {
		return dst, false
	}
	for _, c := range user {
		if c == '{' || c == '}' {
			return dst, false
		}
	}
	dst = append(dst, "sip:"...)
	dst = append(dst, user...)
	dst = append(dst, '@')
	for _, c := range host {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst, true
}

// Names are the domains, lower-case.
func (d *Domains) Names() []string {
	out := make([]string, len(d.names))
	for i, n := range d.names {
		out[i] = string(n)
	}
	return out
}
