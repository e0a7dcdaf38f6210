package appliance

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/netip"
	"reflect"
	"time"

	"sipedge/appliance/config"
	"sipedge/appliance/resolve"
	"sipedge/pipeline"
	"sipedge/pipeline/stages/media"
)

// mediaModule is [media]: the media stages (offers on the request side,
// answers on the response side), the relay set and its pinger, /relays.
// md is nil when [media] is disabled.
type mediaModule struct {
	nop
	env *ModuleEnv
	md  *media.Media
	dns *dnsSet // resolves and refreshes the relays named in the DNS
}

func openMedia(env *ModuleEnv) (Module, error) {
	m := &mediaModule{env: env}
	mc := env.Cfg.Media
	if !mc.Enabled {
		return m, nil
	}
	c := media.Config{
		Key: env.Key,
		Flags: media.Flags{
			Replace: mc.Replace, ICE: mc.ICE, TransportProtocol: mc.TransportProtocol,
			Direction: mc.Direction, ReceivedFrom: mc.ReceivedFrom, Other: mc.Flags,
		},
		Deadline:      mc.Deadline.Std(),
		Retry:         mc.Retransmit.Std(),
		PassOnFailure: mc.Fallback == "pass",
		RetryAfter:    int(mc.RetryAfter.Std() / time.Second),
		Helpers:       mc.Helpers,
		Jobs:          mc.Jobs,
		DeleteDelay:   mc.DeleteDelay,
		Ping: media.Ping{Interval: mc.Ping.Interval.Std(), Timeout: mc.Ping.Timeout.Std(),
			DownAfter: mc.Ping.DownAfter, UpAfter: mc.Ping.UpAfter},
		Logf: func(msg string, args ...any) { env.Log.Warn(msg, args...) },
	}
	if mc.Anchor == "sources" { // "always" ignores the list
		c.Sources = mc.SourcePrefixes()
	}
	if mc.LocalAddress != "" {
		a, err := netip.ParseAddr(mc.LocalAddress)
		if err != nil {
			return nil, fmt.Errorf("appliance: media.local_address %q: %v (want an IP address)", mc.LocalAddress, err)
		}
		c.Local = a
	}
	var entries []resolve.Entry
	for i, r := range mc.Relays {
		e, err := parseEntry("media.relays", i, r.Address, r.W(), r.Priority)
		if err != nil {
			return nil, err
		}
		entries = append(entries, e)
	}
	md, err := media.New(c) // no relay yet: the DNS set brings them
	if err != nil {
		return nil, fmt.Errorf("appliance: [media]: %w", err)
	}
	m.md = md
	m.dns = &dnsSet{log: env.Log, family: resolve.FamilyOf(c.Local), service: resolve.NGUDP,
		apply: md.ReplaceRelays, what: "relay", metric: "sipedge_media_dns"}
	ok, err := m.dns.reset(entries, env.Cfg.Dispatcher.DNS)
	if err != nil {
		md.Close()
		return nil, err
	}
	if !ok {
		env.Log.Warn("no media relay resolved yet: offers get the media.fallback until one does", "relays", len(entries))
	}
	return m, nil
}

func (m *mediaModule) Stages() []pipeline.StageMaker {
	if m.md == nil {
		return nil
	}
	return []pipeline.StageMaker{m.md, m.md.Answer()}
}

// Start refreshes the relays named in the DNS and runs the relay pinger.
// Offline replays (no probing) count every relay as up without pinging.
func (m *mediaModule) Start(ctx context.Context, goFn func(func())) error {
	if m.md == nil {
		return nil
	}
	m.dns.start()
	if !m.env.Probe {
		return nil
	}
	goFn(func() {
		if err := m.md.Run(ctx); err != nil {
			m.env.Log.Error("media relay pinger stopped: relays stay as they were", "err", err)
		}
	})
	return nil
}

// Reload: every [media] change needs a restart (the relays' jobs and
// sockets are per worker), and so does a [dispatcher.dns] change for
// relays named in the DNS (their watcher keeps the settings it opened
// with).
func (m *mediaModule) Reload(old, cfg *config.Config) []string {
	if !reflect.DeepEqual(old.Media, cfg.Media) {
		return []string{"[media]"}
	}
	if m.md != nil && m.dns.dynamic() && !reflect.DeepEqual(old.Dispatcher.DNS, cfg.Dispatcher.DNS) {
		return []string{"[dispatcher.dns] for media.relays"}
	}
	return nil
}

// RelayJSON is one relay as /relays shows it.
type RelayJSON struct {
	Address string `json:"address"`
	// Weight and Priority are the relay's as configured or, for a name,
	// as its SRV records give them (weight 0: it left the DNS and
	// lingers, no new calls).
	Weight      float64 `json:"weight"`
	Priority    uint16  `json:"priority"`
	State       string  `json:"state"`
	Calls       int64   `json:"calls"`
	Orphaned    uint64  `json:"orphaned_calls"`
	Downs       uint64  `json:"downs"`
	PingsOK     uint64  `json:"pings_ok"`
	PingsFailed uint64  `json:"pings_failed"`
}

func (m *mediaModule) relays() []RelayJSON {
	var out []RelayJSON
	set := m.md.Relays().Load()
	for _, x := range m.md.Relays().List() {
		ok, failed := x.Pings()
		r := RelayJSON{Address: x.Addr.String(), State: "down", Calls: x.Calls.Load(), Orphaned: x.Orphaned.Load(),
			Downs: x.Downs.Load(), PingsOK: ok, PingsFailed: failed}
		for _, b := range set.Backends {
			if b.Addr == x.Addr {
				r.Weight, r.Priority = b.Weight, b.Priority
			}
		}
		if x.Up() {
			r.State = "up"
		}
		out = append(out, r)
	}
	return out
}

func (m *mediaModule) Routes(mux *http.ServeMux) {
	mux.HandleFunc("GET /relays", func(w http.ResponseWriter, _ *http.Request) {
		if !m.jsonHead(w) {
			return
		}
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(m.relays())
	})
	// The relay's view of one call (ng query to the call's relay).
	mux.HandleFunc("GET /media/calls/{callid}", func(w http.ResponseWriter, r *http.Request) {
		if !m.jsonHead(w) {
			return
		}
		st, err := m.md.Query(r.PathValue("callid"), time.Second)
		if err != nil {
			w.WriteHeader(http.StatusNotFound)
			json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
			return
		}
		json.NewEncoder(w).Encode(CallJSON{Relay: st.Relay.String(), Created: st.Created,
			RTPPackets: st.RTPPackets, RTPBytes: st.RTPBytes, RTPErrors: st.RTPErrors})
	})
}

// jsonHead starts a JSON answer, or answers 404 when [media] is
// disabled (then false).
func (m *mediaModule) jsonHead(w http.ResponseWriter) bool {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if m.md == nil {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintln(w, `{"error": "[media] is disabled"}`)
		return false
	}
	return true
}

// CallJSON is one call as GET /media/calls/{callid} shows it.
type CallJSON struct {
	Relay      string `json:"relay"`
	Created    int64  `json:"created"`
	RTPPackets int64  `json:"rtp_packets"`
	RTPBytes   int64  `json:"rtp_bytes"`
	RTPErrors  int64  `json:"rtp_errors"`
}

// WriteMetrics writes the relays' state and the ng helpers' counts.
func (m *mediaModule) WriteMetrics(p promWriter) {
	if m.md == nil {
		return
	}
	rs := m.relays()
	up := 0
	p.family("sipedge_media_relay_up", "gauge", "1 when the relay answers pings, 0 when down.")
	for _, r := range rs {
		v := 0.0
		if r.State == "up" {
			v, up = 1, up+1
		}
		p.sample("sipedge_media_relay_up", v, "relay", r.Address)
	}
	p.gauge("sipedge_media_relays_up", "Relays up.", float64(up))
	p.family("sipedge_media_relay_calls", "gauge", "Calls anchored on the relay (offers for new calls less confirmed deletes).")
	for _, r := range rs {
		p.sample("sipedge_media_relay_calls", float64(r.Calls), "relay", r.Address)
	}
	p.family("sipedge_media_relay_orphaned_calls_total", "counter", "Calls in progress on the relay when it went down.")
	for _, r := range rs {
		p.sample("sipedge_media_relay_orphaned_calls_total", float64(r.Orphaned), "relay", r.Address)
	}
	m.dns.writeMetrics(p)
	st := m.md.Stats()
	p.family("sipedge_media_ng_requests_total", "counter", "ng requests sent to relays, by command.")
	for i, name := range media.OpNames {
		p.sample("sipedge_media_ng_requests_total", float64(st.Requests[i].Load()), "command", name)
	}
	p.family("sipedge_media_ng_errors_total", "counter", "ng requests that failed, by reason.")
	for i, name := range media.WhyNames {
		if name == "no-relay" || name == "jobs-full" {
			continue // never sent: counted by the stages' fallbacks
		}
		p.sample("sipedge_media_ng_errors_total", float64(st.Errors[i].Load()), "reason", name)
	}
	p.counter("sipedge_media_lingering_relay_answers_total", "Answers and deletes a relay that left the DNS took after the Call-ID's relay did not know the call.", st.Lingered.Load())
	p.latency("sipedge_media_relay_latency_seconds", "Relay answer latency (offer, answer, delete).", st.Latency.Snapshot())
}

// Close stops the ng helpers; the workers have stopped.
func (m *mediaModule) Close() {
	if m.dns != nil {
		m.dns.stop()
	}
	if m.md != nil {
		m.md.Close()
		m.md = nil
	}
}
