#!/usr/bin/env bash
# sipedge demo: the appliance (config.toml: SIP 127.0.0.1:5060, admin
# 127.0.0.1:9060), two sipp UAS backends on 127.0.0.1:5080 and :5081, a short
# sipp UAC load through the appliance from 127.0.0.2, then a summary.
# Every process is started here and stopped by its pid, also on Ctrl-C.
# Knobs: RATE (calls/s, default 100), CALLS (default 2000).
set -euo pipefail
cd "$(dirname "$0")/../.."
RATE=${RATE:-100}
CALLS=${CALLS:-2000}
command -v sipp >/dev/null || { echo "demo: sipp is missing: apt-get install sip-tester" >&2; exit 1; }
[ -x bin/appliance ] || { echo "demo: bin/appliance is missing: run make build" >&2; exit 1; }
for p in 5060 5080 5081 5070; do
	# Only sockets bound to loopback or to every address collide with ours.
	if ss -Hlun | awk -v p="$p" '$4 ~ ("^(127\\.0\\.0\\.[12]|0\\.0\\.0\\.0|\\*|\\[::\\]):" p "$") {f=1} END{exit !f}'; then echo "demo: UDP port $p is in use; stop what holds it (ss -lunp)" >&2; exit 1; fi
done
work=$(mktemp -d /tmp/sipedge-demo.XXXXXX)
pids=()
cleanup() {
	for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
	for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
	echo "demo: stopped everything; logs and statistics in $work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

uas=$(readlink -f appliance/testdata/uas.xml)
for port in 5080 5081; do
	(cd "$work" && exec sipp -sf "$uas" -i 127.0.0.1 -p $port -nostdin -recv_timeout 5s \
		-trace_stat -stf uas$port.csv -fd 1 >uas$port.log 2>&1) &
	pids+=($!)
done
# config.toml as it is, except that the guard lets the one sipp UAC address
# past its per-source limits (20 INVITEs/s by default): a real caller at
# $RATE calls/s from one address is a trunk, and trunks are allow-listed.
sed 's|^allow = \[\]$|allow = ["127.0.0.2"]|' config.toml >"$work/demo.toml"
grep -q '^allow = \["127.0.0.2"\]$' "$work/demo.toml" || { echo "demo: could not allow-list the UAC in $work/demo.toml" >&2; exit 1; }
./bin/appliance run -c "$work/demo.toml" 2>"$work/appliance.log" &
app=$!
pids+=($app)
echo "demo: appliance pid $app, UAS on 127.0.0.1:5080 and :5081; waiting for both backends to answer probes"
for i in $(seq 100); do
	if curl -fs http://127.0.0.1:9060/healthz >/dev/null 2>&1 && [ "$(curl -s http://127.0.0.1:9060/backends | grep -c '"up"')" = 2 ]; then break; fi
	sleep 0.1
done
curl -s http://127.0.0.1:9060/healthz
cpu0=$(awk '{print $14+$15}' /proc/$app/stat)
echo "demo: $CALLS calls at $RATE/s: sipp -sn uac -i 127.0.0.2 -p 5070 -r $RATE -m $CALLS 127.0.0.1:5060"
(cd "$work" && exec sipp -sn uac -i 127.0.0.2 -p 5070 -r "$RATE" -m "$CALLS" -nostdin -recv_timeout 5s \
	-timeout 50s -trace_stat -stf uac.csv -fd 1 127.0.0.1:5060 >uac.log 2>&1) &
uacpid=$!
pids+=($uacpid)
wait $uacpid || true
cpu1=$(awk '{print $14+$15}' /proc/$app/stat)
tck=$(getconf CLK_TCK)
col() { # col FILE NAME: the last row's value of column NAME of a sipp CSV
	awk -F';' -v n="$2" 'NR==1{for(i=1;i<=NF;i++) if($i==n) c=i} END{print $c}' "$1"
}
ok=$(col "$work/uac.csv" 'SuccessfulCall(C)')
failed=$(col "$work/uac.csv" 'FailedCall(C)')
echo
echo "=== sipedge demo summary ==="
echo "calls: $ok successful, $failed failed (of $CALLS at $RATE/s)"
curl -s http://127.0.0.1:9060/backends | awk -F'"' '/"address"/{a=$4} /"requests"/{gsub(/[^0-9]/,"",$0); print "backend " a ": " $0 " requests (INVITE, ACK, BYE)"}'
awk -v a="$cpu0" -v b="$cpu1" -v t="$tck" -v n="$ok" 'BEGIN{s=(b-a)/t; printf "appliance CPU: %.2f s for the run", s; if (n>0) printf " (%.3f s per 1000 calls)", s*1000/n; print ""}'
curl -s http://127.0.0.1:9060/metrics | grep -E '^sipedge_(received|forwarded|responded)_total|^sipedge_dropped_total' | grep -v ' 0$' || true
