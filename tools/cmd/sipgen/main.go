package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"time"

	"sipedge/pipeline/port/capture"
	"sipedge/tools/sipgen"
)

const usage = `sipgen writes synthetic SIP traffic into a pcap file, deterministically:
the same flags and --seed give the same bytes.

The capture is what arrives at the appliance (the proxy, --proxy) from
outside: callers' INVITE (with SDP), ACK, BYE, CANCEL, REGISTER and OPTIONS.
The proxy's own answers are not in it. With --responses it also holds the
backend's responses (100, 180, 200 with SDP, 487, 200 to BYE/CANCEL) sent to
the proxy: each is made by forwarding the caller's request with
sipcore.BuildForward under the appliance's options (branch keyed by --secret,
Via sent-by = --proxy) and answering that with sipcore.BuildResponse, so an
appliance with the same [node] secret recognises the top Via as its own.

REGISTERs authenticate with digest: a first REGISTER, then the retry
answering a challenge (nonce from --secret at the challenge's timestamp,
qop=auth, MD5 or SHA-256) for a user of the --users file written alongside
(format: username realm HA1-MD5 HA1-SHA-256, one per line, # comments).
--challenges also writes the proxy's 401s, for a capture a human reads.
Nonces carry the capture's timestamps: an appliance replaying it later sees
them stale unless --start is close to the replay time.

Abuse mixes: --flood REGISTER brute force from --flood-sources addresses,
--scan sipvicious/friendly-scanner OPTIONS and INVITE sweeps, --malformed
messages the parser must refuse.

Output is streamed (bounded memory whatever the count).

Usage: sipgen [flags] -o out.pcap
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	cfg := sipgen.DefaultConfig()
	fs := flag.NewFlagSet("sipgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage, "\nFlags:\n")
		fs.PrintDefaults()
	}
	out := fs.String("o", "", "output pcap file (required; - for stdout)")
	users := fs.String("users", "", "write the users file here (default: <output>.users, none for stdout)")
	fs.Int64Var(&cfg.Seed, "seed", cfg.Seed, "random seed")
	fs.IntVar(&cfg.Calls, "calls", cfg.Calls, "calls (INVITE ... BYE, or CANCEL)")
	fs.IntVar(&cfg.Registers, "registers", cfg.Registers, "digest-authenticated registrations")
	fs.IntVar(&cfg.Options, "options", cfg.Options, "OPTIONS keepalives")
	fs.IntVar(&cfg.Flood, "flood", 0, "REGISTER flood / brute-force messages")
	fs.IntVar(&cfg.Scan, "scan", 0, "scanner messages (OPTIONS and INVITE sweeps)")
	fs.IntVar(&cfg.Malformed, "malformed", 0, "malformed messages")
	fs.IntVar(&cfg.FloodSources, "flood-sources", cfg.FloodSources, "addresses the flood comes from")
	fs.IntVar(&cfg.ScanSources, "scan-sources", cfg.ScanSources, "addresses the scans come from")
	fs.IntVar(&cfg.CancelPercent, "cancel-percent", cfg.CancelPercent, "percentage of calls cancelled while ringing")
	flows := fs.Int("flows", 0, "total flows split by --mix (overrides the six counts)")
	mix := fs.String("mix", "calls=70,registers=15,options=10,flood=3,scan=1,malformed=1", "weights used with --flows")
	fs.Uint64Var(&cfg.MaxFrames, "frames", 0, "stop after this many frames (0: when all flows are done)")
	fs.IntVar(&cfg.Callers, "callers", cfg.Callers, "distinct users and caller addresses")
	v6 := fs.Bool("ipv6", false, "IPv6 (default addresses become 2001:db8:: ones)")
	client := fs.String("client", "", "first caller address (caller i is client+i; default 10.1.0.1 or 2001:db8:1::1)")
	clientPort := fs.Uint("client-port", uint(cfg.ClientPort), "callers' UDP port")
	proxy := fs.String("proxy", "", "appliance address:port (default 192.0.2.10:5060 or [2001:db8::10]:5060)")
	backend := fs.String("backend", "", "backend address:port for --responses (default 192.0.2.20:5060 or [2001:db8::20]:5060)")
	attacker := fs.String("attacker", "", "first flood/scan source (default 203.0.113.1 or 2001:db8:bad::1)")
	fs.Float64Var(&cfg.CPS, "cps", cfg.CPS, "calls per second in the timestamps")
	start := fs.String("start", cfg.Start.Format(time.RFC3339), "first timestamp (RFC 3339, or 'now')")
	fs.DurationVar(&cfg.Hold, "hold", cfg.Hold, "mean call duration")
	fs.BoolVar(&cfg.Responses, "responses", false, "include the backend's responses, addressed to the proxy")
	fs.BoolVar(&cfg.Challenges, "challenges", false, "include the proxy's 401 challenges")
	fs.BoolVar(&cfg.RecordRoute, "record-route", cfg.RecordRoute, "the proxy record-routes (in-dialog requests carry Route)")
	fs.StringVar(&cfg.Secret, "secret", cfg.Secret, "the appliance's [node] secret (keys nonces and proxy branches)")
	fs.StringVar(&cfg.Realm, "realm", cfg.Realm, "digest realm")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sipgen: unexpected argument %q (flags only; see -h)\n", fs.Arg(0))
		return 2
	}
	if *out == "" {
		fmt.Fprintln(stderr, "sipgen: -o is required: the pcap file to write (- for stdout)")
		return 2
	}
	if *v6 {
		cfg.IPv6Defaults()
	}
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "sipgen: "+format+"\n", a...)
		return 2
	}
	var err error
	if *client != "" {
		if cfg.Client, err = netip.ParseAddr(*client); err != nil {
			return fail("--client %q: %v (want an IP address)", *client, err)
		}
	}
	if *attacker != "" {
		if cfg.Attacker, err = netip.ParseAddr(*attacker); err != nil {
			return fail("--attacker %q: %v (want an IP address)", *attacker, err)
		}
	}
	if *proxy != "" {
		if cfg.Proxy, err = netip.ParseAddrPort(*proxy); err != nil {
			return fail("--proxy %q: %v (want address:port, [v6]:port for IPv6)", *proxy, err)
		}
	}
	if *backend != "" {
		if cfg.Backend, err = netip.ParseAddrPort(*backend); err != nil {
			return fail("--backend %q: %v (want address:port, [v6]:port for IPv6)", *backend, err)
		}
	}
	if *clientPort == 0 || *clientPort > 65535 {
		return fail("--client-port %d: want 1-65535", *clientPort)
	}
	cfg.ClientPort = uint16(*clientPort)
	if *start == "now" {
		cfg.Start = time.Now().UTC().Truncate(time.Microsecond)
	} else if cfg.Start, err = time.Parse(time.RFC3339, *start); err != nil {
		return fail("--start %q: %v (want RFC 3339 such as 2025-01-01T00:00:00Z, or now)", *start, err)
	}
	if *flows > 0 {
		if err := cfg.ApplyMix(*flows, *mix); err != nil {
			return fail("%v", err)
		}
	}
	g, err := sipgen.New(cfg)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 2
	}
	if err := generate(g, *out, *users, stdout); err != nil {
		fmt.Fprintln(stderr, "sipgen:", err)
		return 1
	}
	return 0
}

func generate(g *sipgen.Generator, out, users string, stdout io.Writer) error {
	var w io.Writer = stdout
	var f *os.File
	if out != "-" {
		var err error
		if f, err = os.Create(out); err != nil {
			return fmt.Errorf("create output: %w", err)
		}
		defer f.Close()
		w = f
		if users == "" {
			users = out + ".users"
		}
	}
	if users != "" && users != "none" {
		uf, err := os.Create(users)
		if err != nil {
			return fmt.Errorf("create users file: %w", err)
		}
		err = g.WriteUsers(uf)
		if cerr := uf.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close users file: %w", cerr)
		}
		if err != nil {
			return err
		}
	}
	pw, err := capture.NewWriter(w)
	if err != nil {
		return err
	}
	var kinds [sipgen.NumKinds]uint64
	for {
		fr, ts, ok := g.Next()
		if !ok {
			break
		}
		kinds[g.Kind()]++
		if err := pw.WriteFrame(ts, fr); err != nil {
			return err
		}
	}
	if err := g.Err(); err != nil {
		return err
	}
	if err := pw.Flush(); err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return fmt.Errorf("close output: %w", err)
		}
		fmt.Fprintf(os.Stderr, "sipgen: %d frames to %s", pw.Frames(), out)
		for k := sipgen.Kind(0); k < sipgen.NumKinds; k++ {
			if kinds[k] > 0 {
				fmt.Fprintf(os.Stderr, ", %s %d", k, kinds[k])
			}
		}
		fmt.Fprintln(os.Stderr)
	}
	return nil
}
