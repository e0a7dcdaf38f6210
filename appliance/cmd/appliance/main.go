package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"sipedge"
	"sipedge/appliance"
	"sipedge/appliance/config"
	"sipedge/appliance/tune"
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
		return runDaemon(args[1:], stderr, config.Host(), nil)
	case "tune":
		return tuneCmd(args[1:], stdout, stderr, config.Host(), tune.LiveHost())
	case "unit":
		return unitCmd(args[1:], stdout, stderr, config.Host())
	case "drain":
		return drainCmd(args[1:], stdout, stderr, config.Host())
	case "help", "-h", "-help", "--help":
		help(stdout)
		return 0
	default:
		fmt.Fprintf(stderr, "appliance: unknown command %q\n", args[0])
		usage(stderr)
		return 2
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: appliance run [-c config.toml] | check [-c config.toml] | tune [-c config.toml] [-apply] |\n"+
		"       drain [-c config.toml] [-undrain] [-wait] | unit [-c config.toml] [-bin PATH] [-config PATH] | version | help\n"+
		"  -c  configuration file (default: the embedded config.toml); appliance help shows the manual")
}

// configFlag parses the -c flag every subcommand takes. When ok is false
// the subcommand returns code (0 for -h, 2 for a usage error).
func configFlag(name string, args []string, stderr io.Writer) (path string, code int, ok bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	p := fs.String("c", "", "configuration `file` (default: the embedded config.toml)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", 0, false
		}
		return "", 2, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "appliance %s: unexpected argument %q\n", name, fs.Arg(0))
		usage(stderr)
		return "", 2, false
	}
	return *p, 0, true
}

// check validates a configuration against sys and prints the effective one
// on stdout, or every problem on stderr.
func check(args []string, stdout, stderr io.Writer, sys config.System) int {
	path, code, ok := configFlag("check", args, stderr)
	if !ok {
		return code
	}
	source, data := embeddedSource, sipedge.DefaultConfig
	if path != "" {
		source = path
		var err error
		if data, err = os.ReadFile(path); err != nil {
			fmt.Fprintf(stderr, "appliance check: reading %s: %v\n", path, err)
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
	for _, w := range tuneWarnings(cfg, tune.LiveHost()) {
		fmt.Fprintln(stderr, "warning:", w)
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

// loadConfig reads path (the embedded default when empty) and checks it.
func loadConfig(path string, sys config.System) (*config.Config, []config.Warning, string, error) {
	source, data := embeddedSource, sipedge.DefaultConfig
	if path != "" {
		source = path
		var err error
		if data, err = os.ReadFile(path); err != nil {
			return nil, nil, source, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	cfg, warns, err := config.Check(data, source, sys)
	return cfg, warns, source, err
}

// stopWithin bounds shutdown: SIGTERM must end the process in 2 s even if
// something hangs; the exit status then says it did not stop cleanly.
const stopWithin = 2 * time.Second

// runDaemon is `appliance run`: it runs the daemon in the foreground until
// SIGTERM or SIGINT (exit 0), reloading on SIGHUP, draining on SIGUSR1 and
// undraining on SIGUSR2. SIGTERM drains first while calls are under way
// ([drain] on_sigterm; a second SIGTERM cuts it short). sigs, when not nil,
// replaces the process's signals (tests).
func runDaemon(args []string, stderr io.Writer, sys config.System, sigs chan os.Signal) int {
	path, code, ok := configFlag("run", args, stderr)
	if !ok {
		return code
	}
	cfg, warns, source, err := loadConfig(path, sys)
	if err != nil {
		fmt.Fprintf(stderr, "%v\nappliance run: %s is not valid (appliance check -c FILE lists every problem)\n", err, source)
		return 1
	}
	log, level := appliance.NewLogger(stderr, cfg.Log)
	for _, w := range warns {
		log.Warn("configuration", "warning", w.String())
	}
	for _, w := range tuneWarnings(cfg, tune.LiveHost()) {
		log.Warn("system does not match [io] (appliance tune -c FILE shows the plan)", "warning", w)
	}
	if sigs == nil {
		sigs = make(chan os.Signal, 4)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
		defer signal.Stop(sigs)
	}
	d, err := appliance.New(cfg, appliance.Options{Logger: log, Level: level, Version: version})
	if err != nil {
		log.Error("cannot start", "err", err)
		return 1
	}
	log.Info("starting", "version", version, "config", source, "node", cfg.Node.Name, "mode", cfg.IO.Port,
		"listen", cfg.IO.Listen, "workers", len(d.Workers()), "pid", os.Getpid())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()
	for {
		select {
		case err := <-done:
			if err != nil {
				log.Error("stopped on error", "err", err)
				return 1
			}
			return 0
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				appliance.NotifyReloading()
				reload(d, path, sys, log)
				appliance.Notify("READY=1")
				continue
			case syscall.SIGUSR1:
				d.Drain("SIGUSR1")
				continue
			case syscall.SIGUSR2:
				d.Undrain()
				continue
			case syscall.SIGTERM:
				// systemd hears of the stop before the drain, which may
				// take [drain] on_sigterm.
				appliance.Notify("STOPPING=1")
				if !drainBeforeStop(d, sigs, done, log) {
					return exitAfterRun(done, log)
				}
			}
			log.Info("stopping", "signal", sig.String())
			appliance.Notify("STOPPING=1")
			cancel()
			select {
			case err := <-done:
				if err != nil {
					log.Error("stopped on error", "err", err)
					return 1
				}
				return 0
			case <-time.After(stopWithin):
				log.Error("did not stop in time: exiting anyway", "limit", stopWithin.String())
				return 1
			}
		}
	}
}

// reload re-reads the same file and applies it; a file that does not
// check keeps the running configuration.
func reload(d *appliance.Daemon, path string, sys config.System, log interface {
	Info(string, ...any)
	Warn(string, ...any)
	Error(string, ...any)
}) {
	cfg, warns, source, err := loadConfig(path, sys)
	if err != nil {
		d.RefuseReload()
		log.Error("reload refused: the running configuration stays", "config", source, "reason", err.Error())
		return
	}
	for _, w := range warns {
		if w.Key == "node.secret" {
			continue // regenerated on every load; the running key stays
		}
		log.Warn("configuration", "warning", w.String())
	}
	if err := d.Reload(cfg); err != nil {
		log.Error("reload refused: the running configuration stays", "config", source, "reason", err.Error())
	}
}
