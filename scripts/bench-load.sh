#!/usr/bin/env bash
# Benchmarks of `scaletui load` against a local nginx (not part of CI; prints figures, asserts
# nothing). Installs Debian's nginx-light and wrk when missing (needs root), starts nginx on
# 127.0.0.1 on a free port with its own config in a temporary folder, and stops it at the end.
#
#   scripts/bench-load.sh throughput   # default
#       ROUNDS (3) rounds of SECS (10) seconds each, alternating, at 64 connections:
#         wrk -t<cores> -c64                                  (Debian's wrk, closed loop)
#         scaletui load --max-rate --concurrency 64           (closed loop, raw client: the default)
#         scaletui load --max-rate --concurrency 64 --client hyper
#         scaletui load --max-rate --concurrency 64 --client reqwest
#       medians and the ratio to wrk; then the open loop at 0.8 x wrk's median rate with 64
#       connections: target, achieved, late and dropped requests.
#   scripts/bench-load.sh memory
#       scaletui load --rps RPS (1000) for DURATION (3600) seconds; the resident memory of the
#       process every SAMPLE (60) seconds, and its growth after the first sample.
set -euo pipefail
cd "$(dirname "$0")/.."

mode=${1:-throughput}
ROUNDS=${ROUNDS:-3}
SECS=${SECS:-10}
RPS=${RPS:-1000}
DURATION=${DURATION:-3600}
SAMPLE=${SAMPLE:-60}
CONNS=64

need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk >/dev/null 2>&1 || need+=(wrk)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "bench-load.sh: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Never let a package start a system service on this machine.
  if [ ! -x /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

cargo build --release --locked --bin scaletui >/dev/null 2>&1 || cargo build --release --locked --bin scaletui
BIN=target/release/scaletui

. scripts/lib/nginx.sh
start_nginx || exit 1
dir=$nginx_dir
cleanup() {
  if [ -n "${load_pid:-}" ]; then kill "$load_pid" 2>/dev/null || true; fi
  stop_nginx
}
trap cleanup EXIT
cores=$(nproc)
echo "nginx on $url (1 worker); $cores cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"

median() { sort -g | awk '{a[NR]=$1} END {if (NR % 2) print a[(NR+1)/2]; else printf "%.1f\n", (a[NR/2]+a[NR/2+1])/2}'; }

scaletui_rate() { # args...; prints answers per second
  "$BIN" load --url "$url" --json "$@" 2>/dev/null | python3 -c 'import json,sys; print(round(json.load(sys.stdin)["summary"]["achieved_rps"], 1))'
}

if [ "$mode" = "throughput" ]; then
  : > "$dir/wrk" ; : > "$dir/raw" ; : > "$dir/hyper" ; : > "$dir/reqwest" ; : > "$dir/ratio"
  for r in $(seq "$ROUNDS"); do
    w=$(wrk -t"$cores" -c$CONNS -d"${SECS}s" "$url" | awk '/Requests\/sec/ {print $2}')
    h=$(scaletui_rate --max-rate --concurrency $CONNS --duration "$SECS")
    y=$(scaletui_rate --max-rate --concurrency $CONNS --duration "$SECS" --client hyper)
    q=$(scaletui_rate --max-rate --concurrency $CONNS --duration "$SECS" --client reqwest)
    ratio=$(awk "BEGIN {printf \"%.2f\", $h/$w}")
    echo "round $r: wrk $w req/s   scaletui (raw) $h req/s (${ratio} x wrk)   (hyper) $y req/s   (reqwest) $q req/s"
    echo "$w" >> "$dir/wrk"; echo "$h" >> "$dir/raw"; echo "$y" >> "$dir/hyper"; echo "$q" >> "$dir/reqwest"; echo "$ratio" >> "$dir/ratio"
  done
  w=$(median < "$dir/wrk"); h=$(median < "$dir/raw"); y=$(median < "$dir/hyper"); q=$(median < "$dir/reqwest")
  x() { awk "BEGIN {printf \"%.2f\", $1/$w}"; }
  echo "median at $CONNS connections: wrk $w req/s; scaletui load (raw) $h req/s = $(x "$h") x wrk; (hyper) $y req/s = $(x "$y") x wrk; (reqwest) $q req/s = $(x "$q") x wrk"
  echo "median of the rounds' ratios (each pair run back to back): scaletui (raw) $(median < "$dir/ratio") x wrk"
  target=$(awk "BEGIN {printf \"%d\", 0.8*$w}")
  "$BIN" load --url "$url" --json --rps "$target" --concurrency $CONNS --duration "$SECS" 2>/dev/null | python3 -c '
import json, sys
s = json.load(sys.stdin)["summary"]
c = s["counts"]
print("open loop at 0.8 x wrk = %s rps, %d connections: planned %d, sent %d, answered %.1f/s, late %d, dropped %d, p99 %.2f ms from the scheduled send" % (
    sys.argv[1], s["concurrency"], s["planned"], c["sent"], s["achieved_rps"], c["late"], c["dropped"], s["latency"]["p99_ms"]))
' "$target"
elif [ "$mode" = "memory" ]; then
  "$BIN" load --url "$url" --rps "$RPS" --duration "$DURATION" > "$dir/load.out" 2>&1 &
  load_pid=$!
  echo "scaletui load --rps $RPS --duration $DURATION (pid $load_pid); resident memory every ${SAMPLE}s:"
  first=""
  t=0
  while kill -0 "$load_pid" 2>/dev/null; do
    sleep "$SAMPLE"
    t=$((t + SAMPLE))
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$load_pid/status" 2>/dev/null || true)
    [ -z "$rss" ] && break
    [ -z "$first" ] && first=$rss
    echo "t=${t}s rss ${rss} KiB ($(tail -n 1 "$dir/load.out" | cut -c1-120))"
    last=$rss
  done
  wait "$load_pid" || true
  grep -E "^Done|rate:" "$dir/load.out" || true
  echo "resident memory: first sample ${first:-?} KiB, last ${last:-?} KiB, growth $(( ${last:-0} - ${first:-0} )) KiB"
  load_pid=""
else
  echo "usage: $0 [throughput|memory]" >&2
  exit 2
fi
