package bindings

import (
	"strings"

	"sipedge/sipcore"
)

// Domains are the SIP domains the cluster is the registrar of. Read-only
// after NewDomains: every worker shares it.
type Domains struct{ names [][]byte }

// NewDomains returns the set of names (case-insensitive).
func NewDomains(names []string) *Domains {
	d := &Domains{}
	for _, n := range names {
		d.names = append(d.names, []byte(strings.ToLower(n)))
	}
	return d
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
