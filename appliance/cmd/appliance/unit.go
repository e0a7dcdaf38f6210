package main

import (
	"flag"
	"fmt"
	"io"

	"sipedge/appliance/config"
	"sipedge/dist"
)

// unitCmd prints the systemd unit for the configuration's [io] cores.
func unitCmd(args []string, stdout, stderr io.Writer, sys config.System) int {
	fs := flag.NewFlagSet("unit", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "configuration `file` whose [io] cores give CPUAffinity (default: the embedded config.toml)")
	bin := fs.String("bin", "/usr/bin/sipedge", "the installed `binary`")
	etc := fs.String("config", "/etc/sipedge/config.toml", "the installed configuration `file`")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	cfg, _, source, err := loadConfig(*path, sys)
	if err != nil {
		fmt.Fprintf(stderr, "%v\nappliance unit: %s is not valid\n", err, source)
		return 1
	}
	u, err := dist.Unit{Bin: *bin, Config: *etc, Cores: cfg.IO.Cores}.Render()
	if err != nil {
		fmt.Fprintln(stderr, "appliance unit:", err)
		return 1
	}
	fmt.Fprint(stdout, u)
	return 0
}

// parseFlags parses a subcommand's flags; when ok is false the subcommand
// returns code (0 for -h, 2 for a usage error).
func parseFlags(fs *flag.FlagSet, args []string, stderr io.Writer) (code int, ok bool) {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0, false
		}
		return 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "appliance %s: unexpected argument %q\n", fs.Name(), fs.Arg(0))
		usage(stderr)
		return 2, false
	}
	return 0, true
}
