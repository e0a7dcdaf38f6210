// Command appliance is the sipedge daemon.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"sipedge"
	"sipedge/appliance/config"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// embeddedSource names the embedded default in messages.
const embeddedSource = "embedded config.toml"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is the whole command behind main, so tests can drive it: it returns
// the exit status (0 ok, 1 failure, 2 usage error).
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 {
		usage(stderr)
		return 2
	}
	switch args[0] {
	case "version":
		fmt.Fprintln(stdout, "sipedge appliance", version)
		return 0
	case "check":
		return check(args[1:], stdout, stderr, config.Host())
	case "run":
		fmt.Fprintln(stderr, "appliance: the daemon is not built yet (issue 4): `appliance check -c config.toml` validates a configuration")
		return 1
	case "help", "-h", "-help", "--help":
		usage(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "appliance: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: appliance run [-c config.toml] | check [-c config.toml] | version\n"+
		"  -c  configuration file (default: the embedded config.toml)")
}

// check validates a configuration against sys and prints the effective one
// on stdout, or every problem on stderr.
func check(args []string, stdout, stderr io.Writer, sys config.System) int {
	fs := flag.NewFlagSet("check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "configuration `file` (default: the embedded config.toml)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "appliance check: unexpected argument %q\n", fs.Arg(0))
		usage(stderr)
		return 2
	}
	source, data := embeddedSource, sipedge.DefaultConfig
	if *path != "" {
		source = *path
		var err error
		if data, err = os.ReadFile(*path); err != nil {
			fmt.Fprintf(stderr, "appliance check: reading %s: %v\n", *path, err)
			return 1
		}
	}
	cfg, warns, err := config.Check(data, source, sys)
	for _, w := range warns {
		fmt.Fprintln(stderr, "warning:", w)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%v\nappliance check: %s is not valid\n", err, source)
		return 1
	}
	// The secret is never printed: this output ends up in tickets and logs.
	shown := *cfg
	shown.Node.Secret = ""
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# effective configuration of %s (defaults filled in)\n", source)
	if cfg.Node.SecretGenerated {
		fmt.Fprintln(&buf, "# node.secret is empty: a random one is generated at each start")
	} else {
		fmt.Fprintln(&buf, "# node.secret is set and not printed")
	}
	if err := shown.WriteTOML(&buf); err != nil {
		fmt.Fprintln(stderr, "appliance check:", err)
		return 1
	}
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		fmt.Fprintln(stderr, "appliance check: writing the configuration:", err)
		return 1
	}
	return 0
}
