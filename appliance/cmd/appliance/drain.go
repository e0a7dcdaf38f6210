package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"syscall"
	"time"

	"sipedge/appliance"
	"sipedge/appliance/config"
)

// drainBeforeStop runs SIGTERM's short drain ([drain] on_sigterm) while
// still serving signals: a second SIGTERM or a SIGINT cuts it short. It
// reports false when the daemon ended on its own meanwhile (its result is
// then in done).
func drainBeforeStop(d *appliance.Daemon, sigs <-chan os.Signal, done chan error, log *slog.Logger) bool {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	drained := make(chan struct{})
	go func() { defer close(drained); d.DrainBeforeStop(ctx) }()
	for {
		select {
		case <-drained:
			return true
		case err := <-done:
			done <- err
			return false
		case sig := <-sigs:
			if sig == syscall.SIGTERM || sig == syscall.SIGINT {
				log.Warn("second stop signal: cutting the drain short", "signal", sig.String())
				cancel()
				<-drained
				return true
			}
		}
	}
}

// exitAfterRun is the exit status of a daemon that ended on its own.
func exitAfterRun(done chan error, log *slog.Logger) int {
	if err := <-done; err != nil {
		log.Error("stopped on error", "err", err)
		return 1
	}
	return 0
}

// drainCmd is `appliance drain`: it asks the running appliance (its admin
// server, [admin] listen of the same configuration) to drain, or with
// -undrain to take calls again, and prints the state. With -wait it waits
// until the node is drained (idle: safe to stop) or drain.timeout passes.
func drainCmd(args []string, stdout, stderr io.Writer, sys config.System) int {
	fs := flag.NewFlagSet("drain", flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("c", "", "configuration `file` of the running appliance (default: the embedded config.toml)")
	undrain := fs.Bool("undrain", false, "take new calls again")
	wait := fs.Bool("wait", false, "wait until the node is drained (idle), at most drain.timeout")
	admin := fs.String("admin", "", "admin server `host:port` (default: admin.listen of the configuration)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "appliance drain: unexpected argument %q\n", fs.Arg(0))
		usage(stderr)
		return 2
	}
	addr := *admin
	timeout := time.Minute
	if addr == "" || *wait {
		cfg, _, source, err := loadConfig(*path, sys)
		if err != nil {
			fmt.Fprintf(stderr, "%v\nappliance drain: %s is not valid\n", err, source)
			return 1
		}
		if addr == "" {
			addr = cfg.Admin.Listen
		}
		timeout = cfg.Drain.Timeout.Std()
	}
	if addr == "" {
		fmt.Fprintln(stderr, "appliance drain: admin.listen is empty: the appliance has no admin server to ask (give -admin host:port)")
		return 1
	}
	route := "/drain"
	if *undrain {
		route = "/undrain"
	}
	client := &http.Client{Timeout: 5 * time.Second}
	st, err := postDrain(client, "http://"+addr+route)
	if err != nil {
		fmt.Fprintf(stderr, "appliance drain: %v (is the appliance running with admin.listen %s?)\n", err, addr)
		return 1
	}
	if *wait && !*undrain {
		deadline := time.Now().Add(timeout + 5*time.Second)
		for st.State == "draining" && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond) // the admin API has no push channel
			if st, err = getDrain(client, "http://"+addr+"/drain"); err != nil {
				fmt.Fprintf(stderr, "appliance drain: %v\n", err)
				return 1
			}
		}
	}
	out, _ := json.Marshal(st)
	fmt.Fprintln(stdout, string(out))
	if *wait && !*undrain && st.State != "drained" {
		fmt.Fprintf(stderr, "appliance drain: still %s after drain.timeout\n", st.State)
		return 1
	}
	return 0
}

func postDrain(c *http.Client, url string) (appliance.DrainStatus, error) {
	resp, err := c.Post(url, "application/json", bytes.NewReader(nil))
	return decodeDrain(resp, err)
}

func getDrain(c *http.Client, url string) (appliance.DrainStatus, error) {
	resp, err := c.Get(url)
	return decodeDrain(resp, err)
}

func decodeDrain(resp *http.Response, err error) (appliance.DrainStatus, error) {
	var st appliance.DrainStatus
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<16))
	if resp.StatusCode/100 != 2 {
		return st, fmt.Errorf("%s: %s %s", resp.Request.URL, resp.Status, bytes.TrimSpace(body))
	}
	if err := json.Unmarshal(body, &st); err != nil {
		return st, fmt.Errorf("%s: %v", resp.Request.URL, err)
	}
	return st, nil
}
