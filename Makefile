# sipedge — see README.md. Every target works on a fresh Debian machine as root.
SHELL := /bin/bash
export PATH := /usr/local/go/bin:$(PATH)
GO ?= go
VERSION ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
LDFLAGS := -X main.version=$(VERSION)
FUZZTIME ?= 400000x
# Debian packages the tests need, installed only when missing.
TEST_DEBS := iproute2 ethtool redis-server sip-tester kamailio
# install/uninstall and the .deb's tests: systemd-analyze, setpriv and prlimit.
TEST_DEBS += systemd util-linux
# Debian packages the benchmark harness needs (sipp, Kamailio 5.6 with its
# dispatcher module, taskset), installed only when missing.
BENCH_DEBS := sip-tester kamailio util-linux iproute2 ethtool

.PHONY: all build run demo test test-alone test-deps lint bench bench-check bench-deps bench-parse fuzz clean install uninstall deb

all: build

build:
	@mkdir -p bin
	$(GO) build -ldflags "$(LDFLAGS)" -o bin/ ./appliance/cmd/... ./tools/cmd/...

# The daemon in the foreground with config.toml (Ctrl-C stops it).
run: build
	@echo "sipedge: SIP on udp 127.0.0.1:5060, admin on http://127.0.0.1:9060 (/metrics /healthz /backends)"
	@echo "  backends 127.0.0.1:5080 and :5081 (see config.toml); start two UAS there, e.g."
	@echo "    sipp -sf appliance/testdata/uas.xml -i 127.0.0.1 -p 5080 -bg"
	@echo "  then send calls through the appliance (a backend is an address and port: any other port is a caller):"
	@echo "    sipp -sn uac -i 127.0.0.1 -p 5070 -r 10 -m 100 127.0.0.1:5060"
	./bin/appliance run -c config.toml

# The whole thing in under a minute: appliance, two sipp UAS backends, a
# sipp UAC load through it, then a summary. Everything is stopped by pid.
demo: build
	./appliance/demo/demo.sh

# The media tests' relay (rtpengine in userspace, started by the tests).
TEST_DEBS += rtpengine-daemon

test-deps:
	@missing=""; for p in $(TEST_DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		echo "installing test dependencies:$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# Every test of the repository (privileged ones included: run as root), the
# bench module's check mode, then a short fuzz pass.
test: test-deps lint
	$(GO) test -count=1 -skip '^TestE2EFloodBesideCaller' ./...
	$(MAKE) test-alone
	$(MAKE) race
	cd bench && $(GO) test -count=1 ./...
	cd tools/deb && $(GO) test -count=1 ./...
	$(MAKE) bench-check
	$(MAKE) fuzz

# Tests that measure what the machine does under a flood (a one-source
# INVITE flood takes a core of this 2-core box beside a steady sipp
# caller that must lose no call): run after the others, alone, since a
# package tested in parallel would take the caller's share of the CPU.
test-alone:
	$(GO) test -count=1 -run '^TestE2EFloodBesideCaller' ./appliance

# The race detector over the packages with concurrent parts: the worker's
# bell, park and answer rings, the auth helpers and fill ring, the guard's
# ban goroutine, the socket port, and the daemon's reload against its admin
# server. About 2 minutes on the 2-core VM (mostly building with -race).
# TestRunPinsToCore is left to the plain run: it reads the thread's CPU
# affinity from a stage, and a worker re-pins only at its sleeps, so under
# the race detector's slower scheduling the goroutine can be on another
# thread when it looks (it tests pinning, not concurrency).
.PHONY: race
race:
	$(GO) test -race -count=1 -skip 'TestRunPinsToCore' ./pipeline/ ./pipeline/internal/... ./pipeline/stages/... ./pipeline/port/socketport/
	$(GO) test -race -count=1 -run 'TestReloadWhileScraping|TestAdminAPIGate' ./appliance/

# A short pass of each fuzz target over untrusted input (go test runs one
# fuzz target per invocation). Budgets are execution counts (about 5-20 s
# each on the 2-core VM), not durations: Go 1.26's fuzz coordinator can
# report its own -fuzztime deadline as a failure, "context deadline
# exceeded" with no crasher (golang/go#75804, fixed in 1.27), and a count
# never arms that deadline.
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParse$$' -fuzztime $(FUZZTIME) ./sipcore
	$(GO) test -run '^$$' -fuzz '^FuzzParseCredentials$$' -fuzztime 150000x ./sipcore
	$(GO) test -run '^$$' -fuzz '^FuzzRespondAfterError$$' -fuzztime 100000x ./sipcore
	$(GO) test -run '^$$' -fuzz '^FuzzNonceCheck$$' -fuzztime 100000x ./sipcore
	$(GO) test -run '^$$' -fuzz '^FuzzAddHeader$$' -fuzztime 120000x ./sipcore
	$(GO) test -run '^$$' -fuzz '^FuzzWorker$$' -fuzztime 25000x ./pipeline/chain
	$(GO) test -run '^$$' -fuzz '^FuzzRouteTarget$$' -fuzztime 80000x ./sipcore
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 170000x ./afxdp/frame
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime 200000x ./pipeline/port/capture
	$(GO) test -run '^$$' -fuzz '^FuzzNameAddr$$' -fuzztime 100000x ./sipcore
	$(GO) test -run '^$$' -fuzz '^FuzzViaList$$' -fuzztime 60000x ./sipcore
	$(GO) test -run '^$$' -fuzz '^FuzzCheck$$' -fuzztime 4000x ./appliance/config
	$(GO) test -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 140000x ./pipeline/stages/media/ng
	$(GO) test -run '^$$' -fuzz '^FuzzParseName$$' -fuzztime 40000x ./appliance/resolve
	$(GO) test -run '^$$' -fuzz '^FuzzContactParams$$' -fuzztime 80000x ./sipcore

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	cd bench && $(GO) vet ./...
	cd tools/deb && $(GO) vet ./...

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

# Install on an edge box (README "Install on an edge box"): binaries in
# PREFIX/bin (the appliance as sipedge), the configuration in
# SYSCONFDIR/sipedge (an edited one is kept: the new default goes beside it
# as config.toml.new), the systemd unit rendered for config.toml's [io]
# cores, and the sipedge system user. DESTDIR stages it elsewhere (no user,
# no chown). Nothing is started.
PREFIX ?= /usr/local
SYSCONFDIR ?= /etc
UNITDIR ?= $(PREFIX)/lib/systemd/system
# what make build writes to bin/ : its installed name
INSTALL_BINS := appliance:sipedge sipedge-users:sipedge-users sipreplay:sipreplay sipgen:sipgen
ETCDIR = $(DESTDIR)$(SYSCONFDIR)/sipedge
# The default as installed, to tell an edited configuration from an old default.
SHIPPED = $(DESTDIR)$(PREFIX)/share/sipedge/config.toml.default

install: build
	@set -e; for b in $(INSTALL_BINS); do install -D -m 0755 bin/$${b%%:*} $(DESTDIR)$(PREFIX)/bin/$${b##*:}; done
	install -d $(DESTDIR)$(UNITDIR) $(ETCDIR) $(dir $(SHIPPED))
	./bin/appliance unit -c config.toml -bin $(PREFIX)/bin/sipedge -config $(SYSCONFDIR)/sipedge/config.toml > $(DESTDIR)$(UNITDIR)/sipedge.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/sipedge.service
	@set -e; c=$(ETCDIR)/config.toml; \
	if [ -e $$c ] && ! cmp -s $$c config.toml && ! { [ -e $(SHIPPED) ] && cmp -s $$c $(SHIPPED); }; then \
		install -m 0640 config.toml $$c.new; echo "kept the edited $$c; the new default is $$c.new"; \
	else install -m 0640 config.toml $$c; rm -f $$c.new; fi
	install -m 0644 config.toml $(SHIPPED)
	@set -e; if [ -z "$(DESTDIR)" ]; then \
		getent passwd sipedge >/dev/null || useradd --system --user-group --no-create-home --home-dir /nonexistent \
			--shell /usr/sbin/nologin --comment "sipedge SIP edge appliance" sipedge; \
		chown root:sipedge $(ETCDIR) $(ETCDIR)/config.toml; chmod 0750 $(ETCDIR); \
		if [ -d /run/systemd/system ]; then systemctl daemon-reload; fi; \
	fi
	@echo "installed, not started: edit $(SYSCONFDIR)/sipedge/config.toml, run sipedge tune -c $(SYSCONFDIR)/sipedge/config.toml, then systemctl enable --now sipedge"

# Removes what install put there; an edited configuration stays (and with
# it /etc/sipedge and the user), said so.
uninstall:
	@set -e; for b in $(INSTALL_BINS); do rm -f $(DESTDIR)$(PREFIX)/bin/$${b##*:}; done
	rm -f $(DESTDIR)$(UNITDIR)/sipedge.service $(ETCDIR)/config.toml.new
	rm -f $(DESTDIR)/etc/systemd/system/sipedge.service.d/cores.conf # written by sipedge tune -apply
	-rmdir $(DESTDIR)/etc/systemd/system/sipedge.service.d 2>/dev/null
	-rmdir --ignore-fail-on-non-empty $(DESTDIR)$(UNITDIR) 2>/dev/null
	@set -e; c=$(ETCDIR)/config.toml; \
	if [ -e $$c ] && ! cmp -s $$c $(SHIPPED) 2>/dev/null; then echo "kept the edited $$c (remove it by hand)"; \
	else rm -f $$c; rmdir $(ETCDIR) 2>/dev/null || true; \
		if [ -z "$(DESTDIR)" ] && [ ! -e $(ETCDIR) ] && getent passwd sipedge >/dev/null; then userdel sipedge; fi; \
		if [ -z "$(DESTDIR)" ] && getent group sipedge >/dev/null; then groupdel sipedge; fi; fi
	rm -f $(SHIPPED)
	-rmdir $(dir $(SHIPPED)) 2>/dev/null
	@if [ -z "$(DESTDIR)" ] && [ -d /run/systemd/system ]; then systemctl daemon-reload; fi

# The Debian package, built in Go with nfpm (tools/deb, its own module):
# /usr/bin/sipedge..., /etc/sipedge/config.toml as a conffile, the unit,
# and maintainer scripts that make the user and start nothing.
DEB ?= bin/sipedge_$(VERSION)_amd64.deb
deb: build
	./bin/appliance unit -c config.toml -bin /usr/bin/sipedge -config /etc/sipedge/config.toml > bin/sipedge.service
	cd tools/deb && $(GO) run . -bin $(CURDIR)/bin -unit $(CURDIR)/bin/sipedge.service -config $(CURDIR)/config.toml \
		-scripts $(CURDIR)/dist/deb -version $(VERSION) -o $(abspath $(DEB))
	@echo "built $(DEB)"

clean:
	rm -rf bin
