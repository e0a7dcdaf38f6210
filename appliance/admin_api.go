package appliance

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"time"
)

// BanJSON is one entry of GET /bans.
type BanJSON struct {
	Source string `json:"source"`
	Reason string `json:"reason"`
	// Left is the time until the ban lapses ("9m58s"); LeftSeconds the
	// same in seconds, for scripts.
	Left        string  `json:"time_left"`
	LeftSeconds float64 `json:"time_left_seconds"`
	// Dropped counts the packets the workers dropped for this ban (not
	// those the XDP program dropped before they reached a worker).
	Dropped uint64 `json:"packets_dropped"`
}

// BanRequest is the body of POST /bans.
type BanRequest struct {
	Source string `json:"source"`
	// TTL is a Go duration ("10m", "1h"); empty takes [guard] ban_ttl.
	TTL string `json:"ttl"`
}

// AllowRequest is the body of POST /allow.
type AllowRequest struct {
	// CIDR is a prefix ("192.0.2.0/24") or a single address.
	CIDR string `json:"cidr"`
}

// ErrorJSON is the body of every admin API error.
type ErrorJSON struct {
	Error string `json:"error"`
}

// maxOperatorBan bounds an operator ban like [guard] ban_ttl is bounded.
const maxOperatorBan = 30 * 24 * time.Hour

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func apiError(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, ErrorJSON{Error: fmt.Sprintf(format, args...)})
}

// readBody decodes a small JSON body into v, refusing unknown fields so a
// misspelt key is an error rather than a silent default.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 4096))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		apiError(w, http.StatusBadRequest, "request body: %v: send JSON such as %s", err, exampleBody(v))
		return false
	}
	return true
}

func exampleBody(v any) string {
	if _, ok := v.(*AllowRequest); ok {
		return `{"cidr": "192.0.2.0/24"}`
	}
	return `{"source": "192.0.2.7", "ttl": "10m"}`
}

func parseSource(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("source %q is not an IP address: give one such as 192.0.2.7 or 2001:db8::7", s)
	}
	return a.Unmap(), nil
}

// parseCIDR accepts a prefix or a bare address (a /32 or /128), as
// [guard] allow does.
func parseCIDR(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return p, fmt.Errorf("cidr %q: %v: give a CIDR such as 192.0.2.0/24 or an address", s, err)
		}
		return p.Masked(), nil
	}
	a, err := parseSource(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("cidr %q is neither a CIDR nor an address: give one such as 192.0.2.0/24 or 192.0.2.7", s)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}
