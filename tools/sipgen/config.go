package sipgen

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"sipedge/sipcore"
)

// Config says what a Generator produces. Counts are flows: a call is
// several frames, a registration two or three, every abuse flow one frame.
type Config struct {
	// Seed makes the output: the same Config gives the same bytes.
	Seed int64

	// Calls, Registers and Options are the legitimate flows.
	Calls, Registers, Options int
	// Flood is the number of REGISTER flood messages (brute-force digest
	// attempts from FloodSources addresses), Scan the number of scanner
	// messages (sipvicious-style OPTIONS and INVITE sweeps from
	// ScanSources addresses), Malformed the number of messages sipcore
	// must refuse.
	Flood, Scan, Malformed int
	// FloodSources and ScanSources are how many addresses the abuse comes
	// from (default 2 each).
	FloodSources, ScanSources int
	// CancelPercent of the calls are cancelled while ringing (0-100).
	CancelPercent int

	// MaxFrames stops the generator after that many frames (0: no cap).
	MaxFrames uint64

	// Callers is the number of distinct users (and caller addresses).
	Callers int
	// Client is the address of caller 0; caller i is Client + i.
	Client     netip.Addr
	ClientPort uint16
	// Proxy is the appliance: every request goes to it.
	Proxy netip.AddrPort
	// Backend answers the calls the proxy forwards (with Responses).
	Backend netip.AddrPort
	// Attacker is the first flood source; the others and the scanners
	// follow it.
	Attacker netip.Addr

	// CPS is the call rate in the timestamps; the other flows are spread
	// over the same span. Start is the first timestamp. Hold is the mean
	// call duration (also bounding how many calls are open at once, hence
	// the generator's memory).
	CPS   float64
	Start time.Time
	Hold  time.Duration

	// Responses adds the backend's responses, addressed to the proxy, with
	// the proxy's Via (branch keyed by Secret) on top.
	Responses bool
	// Challenges adds the proxy's 401 challenges (proxy to caller), for a
	// capture a human reads; the appliance itself never receives them.
	Challenges bool
	// RecordRoute assumes the proxy record-routes: in-dialog requests
	// carry Route: <sip:proxy;lr>, backend 2xx carry Record-Route.
	RecordRoute bool
	// Secret is the appliance's [node] secret: it keys the nonces of the
	// challenges and the proxy branches of the responses.
	Secret string
	// Realm is the digest realm of the users and challenges.
	Realm string
}

// DefaultSecret is the secret used when none is given. It is public: use
// the appliance's own secret for responses it must recognise.
const DefaultSecret = "sipgen-default-secret-not-for-production"

// DefaultConfig is a small IPv4 mix that runs as it is.
func DefaultConfig() Config {
	return Config{
		Seed:          1,
		Calls:         1000,
		Registers:     200,
		Options:       200,
		FloodSources:  2,
		ScanSources:   2,
		CancelPercent: 10,
		Callers:       1000,
		Client:        netip.MustParseAddr("10.1.0.1"),
		ClientPort:    5060,
		Proxy:         netip.MustParseAddrPort("192.0.2.10:5060"),
		Backend:       netip.MustParseAddrPort("192.0.2.20:5060"),
		Attacker:      netip.MustParseAddr("203.0.113.1"),
		CPS:           100,
		Start:         time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		Hold:          5 * time.Second,
		RecordRoute:   true,
		Secret:        DefaultSecret,
		Realm:         "sipedge",
	}
}

// IPv6Defaults switches the default addresses to documentation IPv6 ones.
func (c *Config) IPv6Defaults() {
	c.Client = netip.MustParseAddr("2001:db8:1::1")
	c.Proxy = netip.MustParseAddrPort("[2001:db8::10]:5060")
	c.Backend = netip.MustParseAddrPort("[2001:db8::20]:5060")
	c.Attacker = netip.MustParseAddr("2001:db8:bad::1")
}

// Validate reports the first setting that cannot work.
func (c *Config) Validate() error {
	for _, n := range []struct {
		name string
		v    int
	}{{"calls", c.Calls}, {"registers", c.Registers}, {"options", c.Options},
		{"flood", c.Flood}, {"scan", c.Scan}, {"malformed", c.Malformed}} {
		if n.v < 0 {
			return fmt.Errorf("sipgen: %s is %d: give a count of 0 or more", n.name, n.v)
		}
	}
	if c.Calls+c.Registers+c.Options+c.Flood+c.Scan+c.Malformed == 0 {
		return errors.New("sipgen: nothing to generate: give calls, registers, options or an abuse count above 0")
	}
	if c.Callers < 2 {
		return fmt.Errorf("sipgen: callers is %d: need at least 2 (a caller and a callee)", c.Callers)
	}
	if c.Flood > 0 && c.FloodSources < 1 || c.Scan > 0 && c.ScanSources < 1 {
		return errors.New("sipgen: flood and scan need at least 1 source address each")
	}
	if c.CancelPercent < 0 || c.CancelPercent > 100 {
		return fmt.Errorf("sipgen: cancel percent %d is outside 0-100", c.CancelPercent)
	}
	if !(c.CPS > 0) {
		return fmt.Errorf("sipgen: calls per second is %v: give a rate above 0", c.CPS)
	}
	if c.Hold <= 0 {
		return fmt.Errorf("sipgen: hold time %v: give a duration above 0", c.Hold)
	}
	if !c.Client.IsValid() || !c.Proxy.IsValid() || !c.Backend.IsValid() || !c.Attacker.IsValid() {
		return errors.New("sipgen: client, proxy, backend and attacker addresses are all required")
	}
	v6 := c.Proxy.Addr().Unmap().Is6()
	for _, a := range []netip.Addr{c.Client, c.Backend.Addr(), c.Attacker} {
		if a.Unmap().Is6() != v6 {
			return fmt.Errorf("sipgen: address %v is not of the proxy's family (%v): use all IPv4 or all IPv6", a, c.Proxy.Addr())
		}
	}
	if !v6 && uint64(c.Callers) > 1<<24 {
		return fmt.Errorf("sipgen: %d callers do not fit an IPv4 range; use at most %d or IPv6", c.Callers, 1<<24)
	}
	if c.ClientPort == 0 || c.Proxy.Port() == 0 || c.Backend.Port() == 0 {
		return errors.New("sipgen: ports must not be 0")
	}
	if err := sipcore.ValidateNonceSecret([]byte(c.Secret)); err != nil {
		return fmt.Errorf("sipgen: --secret: %w", err)
	}
	if c.Realm == "" || strings.ContainsAny(c.Realm, " \t\r\n\"#\\") {
		return fmt.Errorf("sipgen: realm %q must be non-empty, without spaces, quotes, backslashes or '#'", c.Realm)
	}
	return nil
}

// ApplyMix sets the six flow counts from total flows and weights such as
// "calls=70,registers=15,options=10,flood=3,scan=1,malformed=1". Counts
// are split by largest remainder, so they sum to total exactly.
func (c *Config) ApplyMix(total int, mix string) error {
	names := []string{"calls", "registers", "options", "flood", "scan", "malformed"}
	w := make([]float64, len(names))
	var sum float64
	for _, part := range strings.Split(mix, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		i := indexOf(names, strings.TrimSpace(k))
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if !ok || i < 0 || err != nil || f < 0 {
			return fmt.Errorf("sipgen: mix element %q: want name=weight with name one of %s and weight >= 0", part, strings.Join(names, ", "))
		}
		w[i] = f
		sum += f
	}
	if sum == 0 || total <= 0 {
		return fmt.Errorf("sipgen: mix %q over %d flows: need a positive total and at least one positive weight", mix, total)
	}
	counts := make([]int, len(names))
	rem := make([]float64, len(names))
	left := total
	for i := range w {
		exact := float64(total) * w[i] / sum
		counts[i] = int(exact)
		rem[i] = exact - float64(counts[i])
		left -= counts[i]
	}
	for ; left > 0; left-- {
		best := 0
		for i := range rem {
			if rem[i] > rem[best] {
				best = i
			}
		}
		counts[best]++
		rem[best] = -1
	}
	c.Calls, c.Registers, c.Options = counts[0], counts[1], counts[2]
	c.Flood, c.Scan, c.Malformed = counts[3], counts[4], counts[5]
	return nil
}

func indexOf(s []string, v string) int {
	for i := range s {
		if s[i] == v {
			return i
		}
	}
	return -1
}
