package config

// Admin is [admin]: the HTTP listener for metrics, health and pprof.
type Admin struct {
	// Listen is the TCP ip:port of the admin HTTP server; empty disables it.
	Listen string `toml:"listen"`
	// Pprof serves net/http/pprof under /debug/pprof/ on Listen.
	Pprof bool `toml:"pprof"`
}

func (a *Admin) setDefaults() {
	*a = Admin{Listen: "127.0.0.1:9060"}
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
	if _, ok := parseIPPort(a.Listen); !ok {
		p.addv("admin.listen", a.Listen, `want ip:port such as "127.0.0.1:9060", or "" to disable the admin server`)
	}
}
