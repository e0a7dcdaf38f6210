package config

import (
	"net/netip"
	"strings"
	"time"
)

// Media is [media]: SDP anchored on external media relays (rtpengine's ng
// protocol; pipeline/stages/media).
type Media struct {
	// Enabled turns the media stages on. Off by default: SDP passes
	// through untouched.
	Enabled bool `toml:"enabled"`
	// Anchor says which calls are anchored: "always", or "sources" (calls
	// with a party in Sources: the offer's source or Request-URI host, the
	// answer's source or next hop).
	Anchor string `toml:"anchor"`
	// Sources are CIDRs for anchor = "sources".
	Sources []string `toml:"sources"`
	// Relays are the rtpengine ng control addresses, or names looked up
	// in the DNS with [dispatcher.dns]'s settings.
	Relays []MediaRelay `toml:"relays"`
	// Deadline is how long a message waits for its relay.
	Deadline Duration `toml:"deadline"`
	// Retransmit is the ng retransmission interval within Deadline.
	Retransmit Duration `toml:"retransmit"`
	// Fallback is what a message gets when the relay fails or is late:
	// "reject" (503 for a request, drop for a response) or "pass" (the
	// SDP unchanged).
	Fallback string `toml:"fallback"`
	// RetryAfter is the Retry-After of that 503.
	RetryAfter Duration `toml:"retry_after"`
	// Helpers is the number of ng clients per worker and side.
	Helpers int `toml:"helpers"`
	// Jobs bounds the messages per worker and side out at a relay.
	Jobs int `toml:"jobs"`
	// DeleteDelay is sent with deletes (seconds); -1 leaves the relay's
	// own default.
	DeleteDelay int `toml:"delete_delay"`
	// LocalAddress is the address the ng sockets bind; "" for any.
	LocalAddress string `toml:"local_address"`
	// Replace, ICE, TransportProtocol, Direction, ReceivedFrom and Flags
	// are passed with offers and answers.
	Replace           []string `toml:"replace"`
	ICE               string   `toml:"ice"`
	TransportProtocol string   `toml:"transport_protocol"`
	Direction         []string `toml:"direction"`
	ReceivedFrom      bool     `toml:"received_from"`
	Flags             []string `toml:"flags"`
	// Ping is how relays are checked.
	Ping Probe `toml:"ping"`
}

// MediaRelay is one entry of media.relays.
type MediaRelay struct {
	// Address is the relay's ng control IP:port, or a name: host:port
	// (A/AAAA), a domain or sip: URI (SRV _ng._udp, else A/AAAA on 2223)
	// or an SRV name.
	Address string `toml:"address"`
	// Weight is its relative share of new calls, 1 to 1000; 1 when left
	// out. For a name found by SRV it multiplies the records' weights.
	Weight *int `toml:"weight"`
	// Priority is the RFC 2782 priority of targets that do not come from
	// SRV (0 to 65535, lower preferred): higher ones are standby relays.
	Priority int `toml:"priority"`
}

// W is the relay's weight (1 when left out).
func (r MediaRelay) W() int {
	if r.Weight == nil {
		return 1
	}
	return *r.Weight
}

var (
	mediaReplace   = []string{"origin", "session-connection", "force-increment-sdp-version", "zero-address", "username", "session-name"}
	mediaTransport = []string{"RTP/AVP", "RTP/SAVP", "RTP/AVPF", "RTP/SAVPF", "UDP/TLS/RTP/SAVP", "UDP/TLS/RTP/SAVPF"}
)

func (m *Media) setDefaults() {
	*m = Media{
		Anchor:       "always",
		Sources:      []string{},
		Relays:       []MediaRelay{{Address: "127.0.0.1:2223", Weight: new(int(1))}},
		Deadline:     Duration(200 * time.Millisecond),
		Retransmit:   Duration(50 * time.Millisecond),
		Fallback:     "reject",
		RetryAfter:   Duration(5 * time.Second),
		Helpers:      16,
		Jobs:         256,
		DeleteDelay:  -1,
		Replace:      []string{"origin", "session-connection"},
		ICE:          "remove",
		Direction:    []string{},
		ReceivedFrom: true,
		Flags:        []string{},
		Ping: Probe{
			Interval:  Duration(time.Second),
			Timeout:   Duration(500 * time.Millisecond),
			DownAfter: 3,
			UpAfter:   2,
		},
	}
}

func (m *Media) check(p *problems, _ *Config, _ System) {
	if !m.Enabled {
		return
	}
	switch m.Anchor {
	case "always":
	case "sources":
		if len(m.Sources) == 0 {
			p.add("media.sources", "empty with anchor = \"sources\": list the CIDRs whose calls are anchored, or set anchor = \"always\"")
		}
	default:
		p.addv("media.anchor", m.Anchor, `want "always" or "sources"`)
	}
	for i, s := range m.Sources {
		if _, err := netip.ParsePrefix(s); err != nil {
			p.addv("media.sources["+itoa(i)+"]", s, "want a CIDR such as \"10.0.0.0/8\"")
		}
	}
	if len(m.Relays) == 0 {
		p.add("media.relays", "empty: list at least one rtpengine ng address, such as relays = [{ address = \"127.0.0.1:2223\" }], or set enabled = false")
	}
	seen := map[string]int{}
	for i, r := range m.Relays {
		key := "media.relays[" + itoa(i) + "]"
		if why := backendAddressProblem(r.Address); why != "" {
			p.addv(key+".address", r.Address, "%s of the relay's ng socket (--listen-ng); a name is looked up as SRV _ng._udp.NAME, else its A/AAAA on 2223", why)
		} else if j, dup := seen[r.Address]; dup {
			p.addv(key+".address", r.Address, "already listed as media.relays[%d]: merge them and raise its weight instead", j)
		} else {
			seen[r.Address] = i
		}
		if w := r.W(); w < 1 || w > maxWeight {
			p.addv(key+".weight", w, "want 1 to %d (to drain a relay, remove it)", maxWeight)
		}
		if r.Priority < 0 || r.Priority > 65535 {
			p.addv(key+".priority", r.Priority, "want 0 to 65535 (RFC 2782: lower is preferred; higher ones are standby relays)")
		}
	}
	if d := m.Deadline.Std(); d < time.Millisecond || d > 10*time.Second {
		p.addv("media.deadline", m.Deadline, "want 1ms to 10s: the time a call setup waits for its relay")
	}
	if r := m.Retransmit.Std(); r <= 0 || r > m.Deadline.Std() {
		p.addv("media.retransmit", m.Retransmit, "want a positive duration not longer than media.deadline (%v)", m.Deadline)
	}
	if !oneOf(m.Fallback, "reject", "pass") {
		p.addv("media.fallback", m.Fallback, `want "reject" (503 with Retry-After; responses dropped for their sender to retransmit) or "pass" (the SDP unchanged)`)
	}
	if r := m.RetryAfter.Std(); r < time.Second || r > maxRetryAfter || r%time.Second != 0 {
		p.addv("media.retry_after", m.RetryAfter, "want whole seconds from 1s to %v", maxRetryAfter)
	}
	if m.Helpers < 1 || m.Helpers > 64 {
		p.addv("media.helpers", m.Helpers, "want 1 to 64 ng clients per worker and side")
	}
	if m.Jobs < 8 || m.Jobs > 65536 {
		p.addv("media.jobs", m.Jobs, "want 8 to 65536 (each takes about 12 KiB per worker and side)")
	}
	if m.DeleteDelay < -1 || m.DeleteDelay > 3600 {
		p.addv("media.delete_delay", m.DeleteDelay, "want -1 (the relay's default) or 0 to 3600 seconds")
	}
	if m.LocalAddress != "" {
		if _, err := netip.ParseAddr(m.LocalAddress); err != nil {
			p.addv("media.local_address", m.LocalAddress, "want an IP address of this host, or \"\" for any")
		}
	}
	for i, r := range m.Replace {
		if !oneOf(r, mediaReplace...) {
			p.addv("media.replace["+itoa(i)+"]", r, "want one of %s", strings.Join(mediaReplace, ", "))
		}
	}
	if !oneOf(m.ICE, "", "remove", "force") {
		p.addv("media.ice", m.ICE, `want "" (the relay's default), "remove" or "force"`)
	}
	if m.TransportProtocol != "" && !oneOf(m.TransportProtocol, mediaTransport...) {
		p.addv("media.transport_protocol", m.TransportProtocol, "want \"\" (unchanged) or one of %s", strings.Join(mediaTransport, ", "))
	}
	if len(m.Direction) != 0 && len(m.Direction) != 2 {
		p.add("media.direction", "has %d names: want none, or two of the relay's interface names (caller side first)", len(m.Direction))
	}
	for i, d := range m.Direction {
		if !isToken(d, 64) {
			p.addv("media.direction["+itoa(i)+"]", d, "want an interface name of the relay (--interface NAME/ADDR)")
		}
	}
	for i, f := range m.Flags {
		if !isToken(f, 64) {
			p.addv("media.flags["+itoa(i)+"]", f, "want an ng flag such as \"trust-address\" or \"SIP-source-address\" (letters, digits, '-')")
		}
	}
	pr := m.Ping
	if pr.Interval.Std() <= 0 {
		p.addv("media.ping.interval", pr.Interval, "want a positive duration such as \"1s\"")
	}
	if pr.Timeout.Std() <= 0 || pr.Timeout.Std() > pr.Interval.Std() {
		p.addv("media.ping.timeout", pr.Timeout, "want a positive duration not longer than media.ping.interval (%v)", pr.Interval)
	}
	if pr.DownAfter < 1 || pr.DownAfter > maxProbeCount {
		p.addv("media.ping.down_after", pr.DownAfter, "want 1 to %d failed pings", maxProbeCount)
	}
	if pr.UpAfter < 1 || pr.UpAfter > maxProbeCount {
		p.addv("media.ping.up_after", pr.UpAfter, "want 1 to %d answered pings", maxProbeCount)
	}
}

// SourcePrefixes are Sources parsed (after check).
func (m *Media) SourcePrefixes() []netip.Prefix {
	var out []netip.Prefix
	for _, s := range m.Sources {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
		}
	}
	return out
}
