package config

import (
	"os"
	"reflect"
	"strings"
	"time"
)

// Admin is [admin]: the HTTP listener for metrics, health and pprof.
type Admin struct {
	// Listen is the TCP ip:port of the admin HTTP server; empty disables it.
	Listen string `toml:"listen"`
	// Pprof serves net/http/pprof under /debug/pprof/ on Listen.
	Pprof bool `toml:"pprof"`
	// Token, when set, is the bearer token every request but GET /healthz
	// must carry (Authorization: Bearer TOKEN). Required when Listen is
	// not a loopback address. TokenFile reads it from a file instead.
	Token     string `toml:"token"`
	TokenFile string `toml:"token_file"`
	// Hosts are the host names the Host header may carry besides IP
	// literals and localhost (DNS rebinding: a web page's requests carry
	// its own host name).
	Hosts []string `toml:"hosts"`
	// MaxBody bounds a request body, in bytes.
	MaxBody int `toml:"max_body"`
	// ReadTimeout and WriteTimeout bound reading a request and writing its
	// answer (pprof's profile needs the write timeout above its seconds).
	ReadTimeout  Duration `toml:"read_timeout"`
	WriteTimeout Duration `toml:"write_timeout"`
	// AllowMinPrefixV4 and AllowMinPrefixV6 are the widest prefixes POST
	// /allow accepts: an allow-listed source is never limited nor banned.
	AllowMinPrefixV4 int `toml:"allow_min_prefix_v4"`
	AllowMinPrefixV6 int `toml:"allow_min_prefix_v6"`
}

func (a *Admin) setDefaults() {
	*a = Admin{Listen: "127.0.0.1:9060", Hosts: []string{}, MaxBody: 4096,
		ReadTimeout: Duration(10 * time.Second), WriteTimeout: Duration(60 * time.Second),
		AllowMinPrefixV4: 16, AllowMinPrefixV6: 48}
}

// BearerToken returns the admin token: Token, or the first line of
// TokenFile ("" when neither is set or the file cannot be read, which
// check reports).
func (a *Admin) BearerToken() string {
	if a.Token != "" || a.TokenFile == "" {
		return a.Token
	}
	b, err := os.ReadFile(a.TokenFile)
	if err != nil {
		return ""
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strings.TrimSpace(line)
}

func (a *Admin) afterDecode(map[string]any) []Warning {
	if ap, ok := parseIPPort(a.Listen); ok && a.Pprof && !ap.Addr().IsLoopback() {
		return []Warning{{"admin.pprof", "enabled on " + a.Listen + ", which is not a loopback address: anyone who reaches it can profile the node and read its memory; listen on 127.0.0.1 or turn pprof off"}}
	}
	return nil
}

func (a *Admin) check(p *problems, _ *Config, _ System) {
	if a.Listen == "" {
		if a.Pprof {
			p.add("admin.pprof", "true, but admin.listen is empty so there is no server to serve it: set admin.listen or pprof = false")
		}
		return
	}
	ap, ok := parseIPPort(a.Listen)
	if !ok {
		p.addv("admin.listen", a.Listen, `want ip:port such as "127.0.0.1:9060", or "" to disable the admin server`)
	}
	if a.Token != "" && a.TokenFile != "" {
		p.add("admin.token_file", "set together with admin.token: give the token one way only")
	}
	tok := a.BearerToken()
	switch {
	case a.TokenFile != "" && tok == "":
		p.addv("admin.token_file", a.TokenFile, "cannot be read or is empty: write the token (16 or more characters) on its first line")
	case tok != "" && len(tok) < 16:
		p.add("admin.token", "shorter than 16 characters: use a long random token, such as the output of `openssl rand -hex 24`")
	case tok == "" && ok && !ap.Addr().IsLoopback():
		p.addv("admin.token", "", "required because admin.listen %s is not a loopback address: anyone who reaches it could ban, allow and profile; set a token (openssl rand -hex 24) or listen on 127.0.0.1", a.Listen)
	}
	for i, h := range a.Hosts {
		if h == "" || strings.ContainsAny(h, ":/ ") {
			p.addv("admin.hosts["+itoa(i)+"]", h, "want a host name as clients put it in the Host header, without port, such as \"edge1.example.net\"")
		}
	}
	if a.MaxBody < 256 || a.MaxBody > 1<<20 {
		p.addv("admin.max_body", a.MaxBody, "want 256 to 1048576 bytes")
	}
	if d := a.ReadTimeout.Std(); d < time.Second || d > 10*time.Minute {
		p.addv("admin.read_timeout", a.ReadTimeout, "want 1s to 10m")
	}
	if d := a.WriteTimeout.Std(); d < time.Second || d > 10*time.Minute {
		p.addv("admin.write_timeout", a.WriteTimeout, "want 1s to 10m (above the seconds of any pprof profile you take)")
	}
	if a.AllowMinPrefixV4 < 0 || a.AllowMinPrefixV4 > 32 {
		p.addv("admin.allow_min_prefix_v4", a.AllowMinPrefixV4, "want 0 to 32 (0 lets /allow take 0.0.0.0/0)")
	}
	if a.AllowMinPrefixV6 < 0 || a.AllowMinPrefixV6 > 128 {
		p.addv("admin.allow_min_prefix_v6", a.AllowMinPrefixV6, "want 0 to 128")
	}
}

// Same reports whether b is the same [admin] section (a change needs a
// restart of the admin server).
func (a *Admin) Same(b *Admin) bool { return reflect.DeepEqual(a, b) }
