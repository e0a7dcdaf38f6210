package main

import (
	"flag"
	"fmt"
	"io"

	"sipedge/appliance/config"
	"sipedge/appliance/tune"
)

// exitDiffers is tune's exit status when the system differs from the plan
// and -apply was not given: scripts can tell "tuned" from "not yet".
const exitDiffers = 3

// tuneCmd prints the plan for the configuration's [io] and, with -apply,
// carries it out and prints what is left.
func tuneCmd(args []string, stdout, stderr io.Writer, sys config.System, host tune.Host) int {
	fs := flag.NewFlagSet("tune", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "configuration `file` (default: the embedded config.toml)")
	apply := fs.Bool("apply", false, "apply the changes (idempotent) instead of only printing them")
	if code, ok := parseFlags(fs, args, stderr); !ok {
		return code
	}
	cfg, _, source, err := loadConfig(*path, sys)
	if err != nil {
		fmt.Fprintf(stderr, "%v\nappliance tune: %s is not valid\n", err, source)
		return 1
	}
	plan := tune.Make(host, cfg.IO)
	fmt.Fprintf(stdout, "# tuning for %s: io.port %s, interface %q, queues %v, cores %v, wait %s\n",
		source, cfg.IO.Port, cfg.IO.Interface, cfg.IO.Queues, cfg.IO.Cores, cfg.IO.Wait)
	plan.Write(stdout)
	if !*apply {
		if plan.Differs() > 0 {
			return exitDiffers
		}
		return 0
	}
	changed, after, err := tune.Tune(host, cfg.IO)
	fmt.Fprintf(stdout, "# applied %d changes; the system now:\n", changed)
	after.Write(stdout)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// tuneWarnings are the start-up warnings of `check` and `run`: the items
// where the live system does not match [io]. Only for afxdp, the mode an
// edge box runs; the socket port runs anywhere and is not nagged.
func tuneWarnings(cfg *config.Config, host tune.Host) []string {
	if cfg.IO.Port != "afxdp" {
		return nil
	}
	return tune.Make(host, cfg.IO).Warnings()
}
