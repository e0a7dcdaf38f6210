# sipedge — see README.md. Every target works on a fresh Debian machine as root.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 20s
# Debian packages the tests need, installed only when missing.
TEST_DEBS := iproute2 ethtool redis-server sip-tester kamailio
# Debian packages the benchmark harness needs (sipp, Kamailio 5.6 with its
# dispatcher module, taskset), installed only when missing.
BENCH_DEBS := sip-tester kamailio util-linux iproute2 ethtool

.PHONY: all build run demo test test-deps lint bench bench-check bench-deps bench-parse fuzz clean

all: build

build:
	@mkdir -p bin
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./appliance/cmd/... ./tools/cmd/...

# The daemon in the foreground with config.toml (Ctrl-C stops it).
run: build
	@echo "sipedge: SIP on udp 127.0.0.1:5060, admin on http://127.0.0.1:9060 (/metrics /healthz /backends)"
	@echo "  backends 127.0.0.1:5080 and :5081 (see config.toml); start two UAS there, e.g."
	@echo "    sipp -sf appliance/testdata/uas.xml -i 127.0.0.1 -p 5080 -bg"
	@echo "  then send calls through the appliance (from another loopback address, so it is not taken for a backend):"
	@echo "    sipp -sn uac -i 127.0.0.2 -p 5070 -r 10 -m 100 127.0.0.1:5060"
	./bin/appliance run -c config.toml

# The whole thing in under a minute: appliance, two sipp UAS backends, a
# sipp UAC load through it, then a summary. Everything is stopped by pid.
demo: build
	./appliance/demo/demo.sh

test-deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing test dependencies:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Every test of the repository (privileged ones included: run as root), the
# bench module's check mode, then a short fuzz pass.
test: test-deps lint
	$(GO) test -count=1 ./...
	cd bench && $(GO) test -count=1 ./...
	$(MAKE) bench-check
	$(MAKE) fuzz

# A short pass of each fuzz target over untrusted input (go test runs one
# fuzz target per invocation).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./sipcore
	$(GO) test -run '^$$' -fuzz '^FuzzParseCredentials$$' -fuzztime 10s ./sipcore
	$(GO) test -run '^$$' -fuzz '^FuzzRouteTarget$$' -fuzztime 5s ./sipcore
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 10s ./afxdp/frame
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime 10s ./pipeline/port/capture
	$(GO) test -run '^$$' -fuzz '^FuzzNameAddr$$' -fuzztime 5s ./sipcore
	$(GO) test -run '^$$' -fuzz '^FuzzViaList$$' -fuzztime 5s ./sipcore
	$(GO) test -run '^$$' -fuzz '^FuzzCheck$$' -fuzztime 5s ./appliance/config

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

# Parser figures: sipcore against sipgo on the same messages, side by side.
bench-parse:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./sipcore | tee /tmp/sipedge-sipcore.bench
	cd bench && $(GO) run ./cmd/parsecmp

bench-deps:
	@missing=""; for p in $(BENCH_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing benchmark dependencies:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The side-by-side harness (bench/harness): parser against sipgo, pipeline
# per core through sipreplay, and the same sipp load through Kamailio 5.6
# and the appliance (socket and AF_XDP, each wait mode) at rising rates,
# idle CPU, OPTIONS round trips, and the open-loop capacity replay. Writes
# bench/results/DATE.json, DATE.md and PNG plots; about 20 minutes (the
# end-to-end and capacity parts alone took 863 s on the 2-vCPU build VM).
# Flags of bench/cmd/harness go in HARNESS_FLAGS.
bench: bench-deps build
	$(GO) test -run '^$$' -bench . -benchmem -count 1 ./sipcore | tee /tmp/sipedge-sipcore.bench
	cd bench && $(GO) run ./cmd/harness $(HARNESS_FLAGS)

# The harness's check mode (a few seconds per part, one low rate per
# proxy) so that it cannot rot; part of make test.
bench-check: bench-deps build
	cd bench && $(GO) run ./cmd/harness -check $(HARNESS_FLAGS) >/dev/null

clean:
	rm -rf bin
