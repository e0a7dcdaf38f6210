#!/usr/bin/env bash
# End-to-end benchmark: sipp UAC -> sipedge appliance (socket port on
# loopback) -> two sipp UAS. For each rate in RATES it runs CALLS_PER_RATE
# seconds of calls and prints: rate, calls, failed, failed %, appliance CPU
# seconds per 1000 calls (utime+stime from /proc/PID/stat), achieved CPS.
# The highest rate with under 0.1% failed calls is the sustained CPS.
#   RATES="500 1000 2000" SECONDS_PER_RATE=10 bench/e2e/run.sh
# AUTH=1 turns on [auth] (users file written by sipedge-users, MD5, which
# sipp answers) and runs appliance/testdata/uac_auth.xml: every call is
# challenged (407), then authenticated, so the appliance sees 7 messages
# per call instead of 5.
# The guard runs with per-source limits above the rates (one sipp sends all
# the calls), so its full per-message path is in the figures.
# Every process is started here and stopped by its pid (also on Ctrl-C).
set -euo pipefail
cd "$(dirname "$0")/../.."
RATES=${RATES:-"250 500 1000 2000"}
SECS=${SECONDS_PER_RATE:-10}
SIP=127.0.0.1:15060 ADMIN=127.0.0.1:19060
command -v sipp >/dev/null || { echo "bench: sipp is missing: apt-get install sip-tester" >&2; exit 1; }
make -s build
work=$(mktemp -d /tmp/sipedge-e2e-bench.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM
cat >"$work/bench.toml" <<TOML
[node]
addresses = ["127.0.0.1"]
secret = "e2e benchmark secret, 32 bytes.."
[io]
port = "socket"
listen = "$SIP"
cores = [${CORES:-0}]
[admin]
listen = "$ADMIN"
[[dispatcher.backends]]
address = "127.0.0.1:15080"
[[dispatcher.backends]]
address = "127.0.0.1:15081"
[guard]
rate = 1000000
burst = 1000000
invite_rate = 1000000
invite_burst = 1000000
TOML
uac_args=(-sn uac)
if [ "${AUTH:-0}" = 1 ]; then
	./bin/sipedge-users -f "$work/users" -realm sipedge.bench -user alice -password bench-password >/dev/null
	cat >>"$work/bench.toml" <<TOML
[auth]
enabled = true
realm = "sipedge.bench"
algorithms = ["MD5"]
# sipp puts sip:HOST:PORT, not the Request-URI, in the digest uri.
check_uri = false
users_file = "$work/users"
TOML
	uac_args=(-sf "$(readlink -f appliance/testdata/uac_auth.xml)" -au alice -ap bench-password -default_behaviors all,-bye)
fi
uas=$(readlink -f appliance/testdata/uas.xml)
for port in 15080 15081; do
	(cd "$work" && exec sipp -sf "$uas" -i 127.0.0.1 -p $port -nostdin -recv_timeout 10s >uas$port.log 2>&1) &
	pids+=($!)
done
./bin/appliance run -c "$work/bench.toml" 2>"$work/appliance.log" &
app=$!
pids+=($app)
for i in $(seq 100); do curl -fs http://$ADMIN/healthz >/dev/null 2>&1 && break; sleep 0.1; done
tck=$(getconf CLK_TCK)
col() { awk -F';' -v n="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==n) c=i} END{print $c}' "$1"; }
printf "%-8s %-8s %-8s %-9s %-16s %s\n" rate calls failed failed% "cpu_s/1000calls" achieved_cps
for rate in $RATES; do
	calls=$((rate * SECS))
	cpu0=$(awk '{print $14+$15}' /proc/$app/stat)
	t0=$(date +%s.%N)
	(cd "$work" && exec sipp "${uac_args[@]}" -s bob -i 127.0.0.2 -p 15070 -r "$rate" -m "$calls" -l $((rate * 4)) -nostdin \
		-recv_timeout 5s -timeout $((SECS * 3 + 10))s -trace_stat -stf uac$rate.csv -fd 1 "$SIP" >uac$rate.log 2>&1) || true
	t1=$(date +%s.%N)
	cpu1=$(awk '{print $14+$15}' /proc/$app/stat)
	ok=$(col "$work/uac$rate.csv" 'SuccessfulCall(C)')
	failed=$(col "$work/uac$rate.csv" 'FailedCall(C)')
	awk -v r="$rate" -v c="$calls" -v ok="$ok" -v f="$failed" -v a="$cpu0" -v b="$cpu1" -v t="$tck" -v t0="$t0" -v t1="$t1" \
		'BEGIN{n=ok+f; printf "%-8d %-8d %-8d %-9.3f %-16.3f %.0f\n", r, n, f, (n?100*f/n:0), (ok?(b-a)/t*1000/ok:0), ok/(t1-t0)}'
done
echo "logs and sipp statistics: $work"
