package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"sipedge/tools/replay"
)

const usage = `sipreplay replays the SIP datagrams of pcap/pcapng captures (Ethernet, Linux
cooked SLL/SLL2 or raw IP; IPv4 and IPv6 fragments reassembled). A UDP
datagram is SIP when it starts like a SIP message or uses a --sip-ports port.

Destinations (--into):
  pipeline        through the appliance's own pipeline (the daemon's stages,
                  built from --config, default the embedded config.toml)
                  in-process, on --workers workers (default: one per io.cores
                  entry), each pinned to a CPU. The captures are loaded once
                  and split across workers by source address (as RSS would);
                  each worker replays its share --loop times from memory as
                  fast as it can (--speed/--rate do not apply; Call-IDs are
                  not rewritten: the proxy keeps no state), output discarded,
                  backends all up (no probes). The pipeline answers as the
                  capture's main destination. Reports messages/s per core,
                  ns/message per stage (1 message in 64 timed; "total" is the
                  whole worker loop), verdicts and allocations per message
                  (after a warm-up of 4096 messages per worker, not counted).
                  --secret must match the capture's (sipgen --secret) for
                  responses to be the proxy's own; when neither it nor the
                  configuration sets one, sipgen's default secret is used.
  udp:HOST:PORT   onto the wire, every datagram to HOST:PORT from one socket
  afxdp:IFACE     onto the wire through an AF_XDP socket on IFACE queue 0
                  (root; xdpport attaches its XDP program for the capture's
                  SIP ports, so datagrams arriving for them on IFACE are
                  swallowed while it runs). Destinations' MACs are resolved
                  first (up to 2 s); a datagram to an unresolved one, or above
                  the MTU, goes through a kernel socket bound to its source
                  port. Datagrams above 4000 bytes are dropped and counted.
                  Pacing and --map-src/--map-dst as for udp.
  pcap:FILE       into a capture, with the rewritten addresses and timing

Pacing: the capture's own timing scaled by --speed (default 1), a fixed
--rate in datagrams per second, or as fast as possible with --speed 0.
--loop N replays N times; from the second loop on every Call-ID gets the
suffix -L<loop> (in every message of the call; Content-Length stays right)
so a looped call is a new call to the receiver.
--map-src/--map-dst A=B rewrite datagram endpoints (IP or IP:PORT each side;
an A without port matches any port). They change the UDP/IP addresses only,
not addresses inside the SIP text.

Progress goes to stderr (a bar on a terminal, plain lines otherwise), the
summary table to stdout, --json FILE writes it for machines. The exit status
is 1 when anything failed (send errors, unreadable capture), 2 on bad usage.

Usage: sipreplay [flags] capture.pcap [more.pcapng ...]
`

type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr, isTerminal(os.Stderr)))
}

// isTerminal reports whether f is a terminal: only a tty answers TCGETS.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func run(args []string, stdout, stderr io.Writer, tty bool) int {
	var o replay.Options
	fs := flag.NewFlagSet("sipreplay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage, "\nFlags:\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Into, "into", "pipeline", "pipeline, udp:HOST:PORT, afxdp:IFACE or pcap:FILE")
	fs.Float64Var(&o.Speed, "speed", 1, "scale of the capture's timing (0: as fast as possible)")
	fs.Float64Var(&o.Rate, "rate", 0, "fixed datagrams per second (overrides --speed)")
	fs.IntVar(&o.Loop, "loop", 1, "replay the captures this many times")
	fs.IntVar(&o.Workers, "workers", 0, "pipeline workers (--into pipeline; 0: one per io.cores entry of --config)")
	fs.StringVar(&o.Config, "config", "", "appliance config.toml for --into pipeline (default: the embedded one)")
	fs.StringVar(&o.Secret, "secret", "", "[node] secret for --into pipeline: the one the capture was made with (sipgen --secret)")
	var mapSrc, mapDst multi
	fs.Var(&mapSrc, "map-src", "rewrite source A=B (repeatable)")
	fs.Var(&mapDst, "map-dst", "rewrite destination A=B (repeatable)")
	ports := fs.String("sip-ports", "5060,5061", "UDP ports whose datagrams are SIP even when they do not look it")
	jsonOut := fs.String("json", "", "write the summary as JSON to this file")
	quiet := fs.Bool("quiet", false, "no progress display")
	fs.DurationVar(&o.Every, "progress-every", time.Second, "interval between progress updates")
	// Flags may follow the capture names: parse again after each name.
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return 0
			}
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		o.Inputs = append(o.Inputs, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(o.Inputs) == 0 {
		fmt.Fprintln(stderr, "sipreplay: give at least one capture file (see -h)")
		return 2
	}
	for _, v := range mapSrc {
		m, err := replay.ParseMapping(v)
		if err != nil {
			fmt.Fprintln(stderr, "sipreplay: --map-src", err)
			return 2
		}
		o.MapSrc = append(o.MapSrc, m)
	}
	for _, v := range mapDst {
		m, err := replay.ParseMapping(v)
		if err != nil {
			fmt.Fprintln(stderr, "sipreplay: --map-dst", err)
			return 2
		}
		o.MapDst = append(o.MapDst, m)
	}
	for _, p := range strings.Split(*ports, ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			fmt.Fprintf(stderr, "sipreplay: --sip-ports: %q is not a port (1-65535)\n", p)
			return 2
		}
		o.SIPPorts = append(o.SIPPorts, uint16(n))
	}
	if o.Loop < 1 {
		fmt.Fprintf(stderr, "sipreplay: --loop %d: want 1 or more\n", o.Loop)
		return 2
	}
	if o.Workers < 0 {
		fmt.Fprintf(stderr, "sipreplay: --workers %d: want 1 or more (0: from the configuration)\n", o.Workers)
		return 2
	}
	if o.Every <= 0 {
		fmt.Fprintln(stderr, "sipreplay: --progress-every must be above 0")
		return 2
	}
	if !*quiet {
		o.Progress, o.Terminal = stderr, tty
	}
	s, err := replay.Run(o)
	s.WriteTable(stdout)
	code := 0
	if err != nil {
		fmt.Fprintln(stderr, "sipreplay:", err)
		s.Errors = append(s.Errors, err.Error())
		code = 1
	} else if !s.OK() {
		fmt.Fprintf(stderr, "sipreplay: %d send errors, %d datagrams lost in reassembly\n", s.SendErrors, s.FragmentsLost)
		code = 1
	}
	if *jsonOut != "" {
		if err := s.WriteJSON(*jsonOut); err != nil {
			fmt.Fprintln(stderr, "sipreplay:", err)
			code = 1
		}
	}
	return code
}
