package appliance

import (
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"

	"sipedge/appliance/config"
)

// adminGate wraps the admin API in what keeps it the operator's: a bearer
// token (when configured; required off loopback by config), a Host check
// against DNS rebinding (a web page's requests carry its own host name, so
// a browser on the operator's desk cannot be turned against the API), JSON
// only with a size limit for request bodies.
type adminGate struct {
	next    http.Handler
	token   []byte
	hosts   map[string]bool
	maxBody int64
}

func newAdminGate(next http.Handler, cfg *config.Admin) *adminGate {
	g := &adminGate{next: next, token: []byte(cfg.BearerToken()), hosts: map[string]bool{"localhost": true}, maxBody: int64(cfg.MaxBody)}
	for _, h := range cfg.Hosts {
		g.hosts[strings.ToLower(h)] = true
	}
	return g
}

func (g *adminGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !g.hostOK(r.Host) {
		apiError(w, http.StatusMisdirectedRequest, "Host %q is not this admin server's: use its IP address, localhost, or a name listed in [admin] hosts", r.Host)
		return
	}
	if len(g.token) > 0 && !(r.Method == http.MethodGet && r.URL.Path == "/healthz") {
		auth := r.Header.Get("Authorization")
		tok, ok := strings.CutPrefix(auth, "Bearer ")
		if !ok || subtle.ConstantTimeCompare([]byte(strings.TrimSpace(tok)), g.token) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sipedge admin"`)
			apiError(w, http.StatusUnauthorized, "send the [admin] token: Authorization: Bearer TOKEN")
			return
		}
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions:
		if r.ContentLength > 0 {
			apiError(w, http.StatusBadRequest, "%s takes no body", r.Method)
			return
		}
	default:
		if r.ContentLength > g.maxBody {
			apiError(w, http.StatusRequestEntityTooLarge, "body of %d bytes: at most %d ([admin] max_body)", r.ContentLength, g.maxBody)
			return
		}
		if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
			apiError(w, http.StatusUnsupportedMediaType, "send the body as JSON with Content-Type: application/json")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, g.maxBody)
	}
	g.next.ServeHTTP(w, r)
}

// hostOK accepts an IP literal, localhost, or a configured name, with or
// without a port.
func (g *adminGate) hostOK(host string) bool {
	if host == "" {
		return false
	}
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.TrimSuffix(strings.TrimPrefix(h, "["), "]")
	if _, err := netip.ParseAddr(h); err == nil {
		return true
	}
	return g.hosts[strings.ToLower(strings.TrimSuffix(h, "."))]
}

// checkAllowPrefix refuses an allow-list prefix wider than [admin]
// allow_min_prefix_v4/v6: an allow-listed source is never limited or
// banned, so 0.0.0.0/0 by mistake (or by a forged request) would switch
// the guard off.
func checkAllowPrefix(p netip.Prefix, cfg *config.Admin) (string, bool) {
	min := cfg.AllowMinPrefixV4
	if p.Addr().Is6() {
		min = cfg.AllowMinPrefixV6
	}
	if p.Bits() < min {
		return "the prefix is wider than /" + strconv.Itoa(min) + " ([admin] allow_min_prefix_v4/v6): allow narrower prefixes, or lower the minimum in the config", false
	}
	return "", true
}
