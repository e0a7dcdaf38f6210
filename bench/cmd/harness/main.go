// Command harness runs sipedge's benchmark harness (make bench) or its
// short check mode (make bench-check, part of make test): the parser
// against sipgo, the pipeline per core through sipreplay, the same sipp
// load end to end through Kamailio and the appliance (socket and AF_XDP
// ports, each wait mode) with CPU and context switches per call, idle CPU
// and OPTIONS round trips, and the appliance's open-loop capacity under
// sipreplay. It writes OUT/DATE.json, OUT/DATE.md and PNG plots, shows
// progress on stderr and prints the markdown report on stdout.
//
// It runs as root (network namespaces, AF_XDP, taskset) with sipp,
// kamailio, iproute2 and ethtool installed; every process it starts is
// killed by process group when it ends, on error and on Ctrl-C.
//
//	go run ./cmd/harness                 # full run into results/
//	go run ./cmd/harness -check          # a few seconds per part
//	go run ./cmd/harness -parts e2e -proxies kamailio,appliance-socket-block -rates 100,2000 -duration 5s
//	go run ./cmd/harness -parts capacity -capacity-proxies appliance-socket-busy -capacity-rates 10000,20000
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"sipedge/bench/harness"
)

func main() {
	testing.Init()
	os.Exit(run())
}

func run() int {
	check := flag.Bool("check", false, "short check mode: one low rate per proxy, a small capture, short parser runs")
	parts := flag.String("parts", "parse,pipeline,e2e,capacity", "parts to run: parse, pipeline, e2e, capacity")
	repo := flag.String("repo", "..", "the sipedge checkout")
	bin := flag.String("bin", "", "folder of the built appliance, sipgen and sipreplay (default REPO/bin)")
	out := flag.String("out", "", "report folder (default REPO/bench/results; check mode: a temporary folder)")
	proxies := flag.String("proxies", "", "end-to-end proxies, in order: kamailio and appliance-PORT-WAIT with PORT socket or afxdp and WAIT adaptive, busy or block (appliance-PORT alone writes no [io] wait); 'appliance' means all six (default: check kamailio,appliance-socket-adaptive,appliance-afxdp-adaptive; full kamailio and all six)")
	rates := flag.String("rates", "", "offered calls/s, comma-separated (default: check 100; full 100,1000,2000,5000,8000)")
	idle := flag.Duration("idle", -1, "measure each proxy's idle CPU this long once, after start-up (default: check 1s, full 5s; 0 skips)")
	optRate := flag.Float64("options-rate", -1, "OPTIONS a second sent through the proxy during the load to time round trips (default 20; 0 none)")
	appIO := flag.String("appliance-io", "", "extra or replaced [io] keys for every appliance run, KEY=VALUE comma-separated; integers and true/false stay bare, the rest are TOML strings (e.g. spin=50us,batch_delay=0s,busy_poll=auto,poll_interval=1s or frame_count=4096)")
	capProxies := flag.String("capacity-proxies", "", "appliance variants of the capacity part (default: check appliance-socket-adaptive,appliance-afxdp-adaptive; full all six; 'appliance' means all six)")
	capRates := flag.String("capacity-rates", "", "offered calls/s of the capacity part, rising (default: check 2000; full 10000,15000,20000,25000,30000,40000)")
	capCalls := flag.Int("capacity-calls", 0, "calls in the capacity part's sipgen capture (default: check 2000, full 100000)")
	capCallers := flag.Int("capacity-callers", 0, "caller addresses in the capacity capture, at most 250 (default: check 20, full 200)")
	capStop := flag.Float64("capacity-stop-loss-pct", 0, "end a variant's capacity sweep after a rate losing this % (default 5)")
	duration := flag.Duration("duration", 0, "load per rate (default: check 3s, full 10s); at most 2m")
	uacMax := flag.Float64("uac-max-rate", 0, "most calls/s per sipp UAC process; above it the load is split (default 1500)")
	stopFail := flag.Float64("stop-fail-pct", 0, "end a proxy's sweep after a rate with this failure % (default 10)")
	proxyCore := flag.Int("proxy-core", 1, "CPU the proxy is pinned to")
	sippCore := flag.Int("sipp-core", 0, "CPU every sipp is pinned to")
	children := flag.Int("kamailio-children", 2, "Kamailio UDP worker processes")
	pipeCalls := flag.Int("pipeline-calls", 0, "calls in the sipgen capture (default: check 2000, full 1000000)")
	workers := flag.String("pipeline-workers", "1,2", "pipeline worker counts")
	benchtime := flag.String("parse-benchtime", "", "time per parser per message (default: check 20ms, full 1s)")
	uas := flag.String("uas", "", "sipp UAS scenario answering OPTIONS (default REPO/appliance/testdata/uas.xml, else the harness's own)")
	quiet := flag.Duration("quiet-wait", -1, "before each rate wait up to this long for both cores to be under 30% busy (default: full 10s, check 0)")
	render := flag.String("render", "", "only rewrite the markdown and plots of this results JSON (after reclassifying its points) and exit")
	keep := flag.Bool("keep", false, "keep the scratch folder (configs, process logs, sipp statistics) and print its path")
	flag.Parse()
	if *render != "" {
		r, err := harness.ReadJSON(*render)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		r.Reclassify()
		r.Summarize()
		if err := r.WriteReports(strings.TrimSuffix(*render, ".json")); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		r.WriteMarkdown(os.Stdout)
		return 0
	}

	o := harness.Options{Check: *check, Repo: *repo, Bin: *bin, Out: *out, Stderr: os.Stderr, Keep: *keep,
		Command: "cd bench && go run ./cmd/harness " + strings.Join(os.Args[1:], " ")}
	abs, err := filepath.Abs(o.Repo)
	if err != nil {
		return usage(err)
	}
	o.Repo = abs
	if o.Bin == "" {
		o.Bin = filepath.Join(o.Repo, "bin")
	}
	if *check {
		o.E2E = harness.CheckDefaults()
		o.Capacity = harness.CapacityCheckDefaults()
		o.E2E.UASScenario = *uas
		o.PipelineCalls, o.ParseBenchtime = 2000, "20ms"
		if o.Out == "" {
			o.Out = filepath.Join(os.TempDir(), "sipedge-bench-check")
		}
	} else {
		o.E2E = harness.FullDefaults()
		o.Capacity = harness.CapacityFullDefaults()
		o.E2E.UASScenario = *uas
		o.PipelineCalls, o.ParseBenchtime = 1000000, "1s"
		if o.Out == "" {
			o.Out = filepath.Join(o.Repo, "bench", "results")
		}
	}
	for _, p := range strings.Split(*parts, ",") {
		switch p = strings.TrimSpace(p); p {
		case "parse", "pipeline", "e2e", "capacity":
			o.Parts = append(o.Parts, p)
		case "":
		default:
			return usage(fmt.Errorf("-parts: unknown part %q (want parse, pipeline, e2e, capacity)", p))
		}
	}
	if *proxies != "" {
		if o.E2E.Proxies, err = proxyList(*proxies, true); err != nil {
			return usage(fmt.Errorf("-proxies: %w", err))
		}
	}
	if *capProxies != "" {
		if o.Capacity.Proxies, err = proxyList(*capProxies, false); err != nil {
			return usage(fmt.Errorf("-capacity-proxies: %w", err))
		}
	}
	if *rates != "" {
		if o.E2E.Rates, err = rateList(*rates, 100000); err != nil {
			return usage(fmt.Errorf("-rates: %w", err))
		}
	}
	if *capRates != "" {
		if o.Capacity.Rates, err = rateList(*capRates, 1000000); err != nil {
			return usage(fmt.Errorf("-capacity-rates: %w", err))
		}
	}
	if *capCalls != 0 {
		if *capCalls < 10 || *capCalls > 1000000 {
			return usage(fmt.Errorf("-capacity-calls %d: want 10 to 1000000", *capCalls))
		}
		o.Capacity.Calls = *capCalls
	}
	if *capCallers != 0 {
		if *capCallers < 2 || *capCallers > 250 {
			return usage(fmt.Errorf("-capacity-callers %d: want 2 to 250", *capCallers))
		}
		o.Capacity.Callers = *capCallers
	}
	if *capStop != 0 {
		o.Capacity.StopLossPct = *capStop
	}
	if *idle >= 0 {
		if *idle > time.Minute {
			return usage(fmt.Errorf("-idle %v: at most 1m", *idle))
		}
		o.E2E.IdleWindow = *idle
	}
	if *optRate >= 0 {
		if *optRate > 1000 {
			return usage(fmt.Errorf("-options-rate %v: at most 1000 a second", *optRate))
		}
		o.E2E.OptionsRate = *optRate
	}
	if *appIO != "" {
		for _, kv := range strings.Split(*appIO, ",") {
			k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
			if !ok || k == "" || strings.ContainsAny(k, " \"=[]") {
				return usage(fmt.Errorf("-appliance-io: %q is not KEY=VALUE", kv))
			}
			o.E2E.ApplianceIO = append(o.E2E.ApplianceIO, [2]string{k, v})
		}
		o.Capacity.ApplianceIO = o.E2E.ApplianceIO
	}
	if *duration != 0 {
		if *duration < time.Second || *duration > 2*time.Minute {
			return usage(fmt.Errorf("-duration %v: want 1s to 2m", *duration))
		}
		o.E2E.Duration = *duration
	}
	if *uacMax != 0 {
		if *uacMax < 1 {
			return usage(fmt.Errorf("-uac-max-rate %v: want at least 1", *uacMax))
		}
		o.E2E.UACMaxRate = *uacMax
	}
	if *stopFail != 0 {
		o.E2E.StopFailPct = *stopFail
	}
	if *proxyCore < 0 || *sippCore < 0 || *proxyCore == *sippCore {
		return usage(fmt.Errorf("-proxy-core %d and -sipp-core %d: want two different CPUs", *proxyCore, *sippCore))
	}
	o.E2E.ProxyCore, o.E2E.SippCore = *proxyCore, *sippCore
	o.Capacity.ProxyCore, o.Capacity.LoadCore = *proxyCore, *sippCore
	if *children < 1 || *children > 64 {
		return usage(fmt.Errorf("-kamailio-children %d: want 1 to 64", *children))
	}
	o.E2E.KamailioChildren = *children
	if *pipeCalls != 0 {
		if *pipeCalls < 1 || *pipeCalls > 10000000 {
			return usage(fmt.Errorf("-pipeline-calls %d: want 1 to 10000000", *pipeCalls))
		}
		o.PipelineCalls = *pipeCalls
	}
	for _, v := range strings.Split(*workers, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 || n > 256 {
			return usage(fmt.Errorf("-pipeline-workers: %q is not a worker count from 1 to 256", v))
		}
		o.PipelineWorkers = append(o.PipelineWorkers, n)
	}
	if *benchtime != "" {
		o.ParseBenchtime = *benchtime
	}
	if *quiet >= 0 {
		if *quiet > 5*time.Minute {
			return usage(fmt.Errorf("-quiet-wait %v: at most 5m", *quiet))
		}
		o.E2E.QuietWait, o.E2E.QuietBusyPct = *quiet, 30
	}
	if *uas != "" {
		if _, err := os.Stat(*uas); err != nil {
			return usage(fmt.Errorf("-uas: %v", err))
		}
		if o.E2E.UASScenario, err = filepath.Abs(*uas); err != nil {
			return usage(err)
		}
	}
	if os.Geteuid() != 0 && (contains(o.Parts, "e2e") || contains(o.Parts, "capacity")) {
		const msg = "harness: the end-to-end and capacity parts need root (network namespaces, AF_XDP, binding sipp and the proxies); run them as root, or pass -parts parse,pipeline"
		if !*check || os.Getenv("CI") == "true" {
			fmt.Fprintln(os.Stderr, msg)
			return 1
		}
		// Outside CI the check mode still checks what it can.
		fmt.Fprintln(os.Stderr, msg+": skipping it in this check run")
		o.Parts = slices.DeleteFunc(o.Parts, func(p string) bool { return p == "e2e" || p == "capacity" })
	}

	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	r, err := harness.Run(ctx, o)
	if r != nil {
		r.WriteMarkdown(os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

func contains(s []string, v string) bool { return slices.Contains(s, v) }

// proxyList reads a comma-separated list of proxy names; "appliance"
// stands for all six appliance variants.
func proxyList(v string, kamailioOK bool) ([]string, error) {
	var out []string
	for _, p := range strings.Split(v, ",") {
		p = strings.TrimSpace(p)
		if p == "appliance" {
			out = append(out, harness.ApplianceVariants()...)
			continue
		}
		pv, err := harness.ParseVariant(p)
		if err != nil {
			return nil, err
		}
		if !kamailioOK && !pv.Appliance() {
			return nil, fmt.Errorf("%q: the capacity part runs appliance variants only", p)
		}
		out = append(out, p)
	}
	return out, nil
}

func rateList(v string, most float64) ([]float64, error) {
	var out []float64
	for _, x := range strings.Split(v, ",") {
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil || f < 1 || f > most {
			return nil, fmt.Errorf("%q is not a rate from 1 to %.0f calls/s", x, most)
		}
		out = append(out, f)
	}
	return out, nil
}

func usage(err error) int {
	fmt.Fprintln(os.Stderr, "harness:", err)
	return 2
}
