package config

import (
	"fmt"
	"net/netip"
	"time"
)

// Dispatcher is [dispatcher]: where initial requests go, by Call-ID hash.
type Dispatcher struct {
	// Hashing is how a Call-ID picks a backend: "rendezvous" (highest
	// random weight), so removing a backend only moves its own calls.
	Hashing string `toml:"hashing"`
	// RecordRoute adds this node to the route set so in-dialog requests come
	// back through it.
	RecordRoute bool `toml:"record_route"`
	// RetryAfter is the Retry-After of the 503 sent when every backend is
	// down.
	RetryAfter Duration `toml:"retry_after"`
	// BackendDestinations are the CIDRs initial requests from backends may
	// be sent to (dispatcher_trust.go).
	BackendDestinations []string `toml:"backend_destinations"`
	// Backends are the stateful servers calls are spread over.
	Backends []Backend `toml:"backends"`
	// Probe is how backends are health-checked.
	Probe Probe `toml:"probe"`
	// DNS is how backends given by name are looked up (dispatcher_dns.go).
	DNS DNS `toml:"dns"`
}

// Backend is one entry of dispatcher.backends.
type Backend struct {
	// Address is the backend's SIP host:port, an IP, a domain or a SIP
	// URI; names are resolved per RFC 3263 ([dispatcher.dns]).
	Address string `toml:"address"`
	// Weight is its relative share of new calls, 1 to maxWeight; 1 when
	// left out. For a name resolved by SRV it multiplies the records'
	// weights.
	Weight int `toml:"weight"`
	// Priority is the RFC 2782 priority of the targets that do not come
	// from SRV (which carry their record's): a higher value is a standby
	// set, used only when every backend of a lower one is down.
	Priority int `toml:"priority"`
}

// Probe is [dispatcher.probe]: SIP OPTIONS health checks.
type Probe struct {
	// Interval is the time between two probes of a backend.
	Interval Duration `toml:"interval"`
	// Timeout is how long a probe waits for an answer.
	Timeout Duration `toml:"timeout"`
	// DownAfter is how many probes in a row must fail to mark a backend
	// down.
	DownAfter int `toml:"down_after"`
	// UpAfter is how many probes in a row must succeed to mark it up again.
	UpAfter int `toml:"up_after"`
}

const (
	maxWeight     = 1000
	maxRetryAfter = time.Hour
	maxProbeCount = 100
)

func (d *Dispatcher) setDefaults() {
	*d = Dispatcher{
		Hashing:     "rendezvous",
		RecordRoute: true,
		RetryAfter:  Duration(5 * time.Second),
		Backends:    []Backend{},
		Probe: Probe{
			Interval:  Duration(2 * time.Second),
			Timeout:   Duration(time.Second),
			DownAfter: 3,
			UpAfter:   2,
		},
		DNS: defaultDNS(),
	}
}

// afterDecode gives weight 1 to the backends that leave it out. It needs
// the raw table because a decoded 0 cannot tell "left out" from "0".
func (d *Dispatcher) afterDecode(raw map[string]any) []Warning {
	d.normalizeBackendDestinations()
	// [[dispatcher.backends]] tables and inline arrays of tables decode to
	// different slice types.
	var list []map[string]any
	switch v := raw["backends"].(type) {
	case []map[string]any:
		list = v
	case []any:
		for _, e := range v {
			m, _ := e.(map[string]any)
			list = append(list, m)
		}
	}
	for i := range d.Backends {
		if i >= len(list) {
			break
		}
		if _, set := list[i]["weight"]; !set {
			d.Backends[i].Weight = 1
		}
	}
	if !d.RecordRoute {
		// The route stage relays a backend's in-dialog request only on
		// this node's signed Record-Route token.
		return []Warning{{Key: "dispatcher.record_route", Message: "false: in-dialog requests from backends (a callee's BYE, re-INVITE) get 403, as only this node's signed Record-Route says where they go; set it to true unless backends never send them"}}
	}
	return nil
}

func (d *Dispatcher) check(p *problems, c *Config, _ System) {
	d.checkBackendDestinations(p)
	if d.Hashing != "rendezvous" {
		p.addv("dispatcher.hashing", d.Hashing, `want "rendezvous" (the only method so far)`)
	}
	if r := d.RetryAfter.Std(); r < time.Second || r > maxRetryAfter || r%time.Second != 0 {
		p.addv("dispatcher.retry_after", d.RetryAfter, "want whole seconds from 1s to %v: Retry-After is sent in seconds", maxRetryAfter)
	}
	if len(d.Backends) == 0 {
		p.add("dispatcher.backends", "empty: list at least one backend, such as backends = [{ address = \"127.0.0.1:5080\" }]")
	}
	listen, listenOK := parseIPPort(c.IO.Listen)
	seen := map[string]int{}
	for i, b := range d.Backends {
		key := fmt.Sprintf("dispatcher.backends[%d]", i)
		if why := backendAddressProblem(b.Address); why != "" {
			p.addv(key+".address", b.Address, "%s", why)
		} else if j, dup := seen[b.Address]; dup {
			p.addv(key+".address", b.Address, "already listed as dispatcher.backends[%d]: merge them and raise its weight instead", j)
		} else if ap, err := netip.ParseAddrPort(b.Address); err == nil && listenOK && ap == listen {
			p.addv(key+".address", b.Address, "is io.listen: the appliance would route calls to itself")
		}
		seen[b.Address] = i
		if b.Weight < 1 || b.Weight > maxWeight {
			p.addv(key+".weight", b.Weight, "want 1 to %d (to drain a backend, remove it)", maxWeight)
		}
		if b.Priority < 0 || b.Priority > 65535 {
			p.addv(key+".priority", b.Priority, "want 0 to 65535 (RFC 2782: lower is preferred)")
		}
	}
	d.DNS.check(p)
	pr := d.Probe
	if pr.Interval.Std() <= 0 {
		p.addv("dispatcher.probe.interval", pr.Interval, "want a positive duration such as \"2s\"")
	}
	if pr.Timeout.Std() <= 0 {
		p.addv("dispatcher.probe.timeout", pr.Timeout, "want a positive duration such as \"1s\"")
	} else if pr.Interval.Std() > 0 && pr.Timeout.Std() >= pr.Interval.Std() {
		p.addv("dispatcher.probe.timeout", pr.Timeout, "not shorter than dispatcher.probe.interval (%v): probes of a backend would overlap; shorten the timeout or lengthen the interval", pr.Interval)
	}
	if pr.DownAfter < 1 || pr.DownAfter > maxProbeCount {
		p.addv("dispatcher.probe.down_after", pr.DownAfter, "want 1 to %d failed probes", maxProbeCount)
	}
	if pr.UpAfter < 1 || pr.UpAfter > maxProbeCount {
		p.addv("dispatcher.probe.up_after", pr.UpAfter, "want 1 to %d answered probes", maxProbeCount)
	}
}
