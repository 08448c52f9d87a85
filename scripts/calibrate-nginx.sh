#!/usr/bin/env bash
# Calibrate the simulator on a local nginx (one worker, a fixed 200 "ok" answer, as in
# scripts/bench-load.sh) and write the profile to scenarios/profiles/nginx-local.toml (or $1).
# Installs Debian's nginx-light when missing (needs root). Not part of CI: the figures belong to
# the machine it runs on.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-scenarios/profiles/nginx-local.toml}
if ! command -v nginx >/dev/null 2>&1 && [ ! -x /usr/sbin/nginx ]; then
  [ "$(id -u)" -eq 0 ] || { echo "calibrate-nginx.sh: nginx is missing (apt-get install nginx-light)" >&2; exit 1; }
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends nginx-light >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
cargo build --release --locked --bin scaletui >/dev/null 2>&1 || cargo build --release --locked --bin scaletui
. scripts/lib/nginx.sh
start_nginx
trap stop_nginx EXIT
mkdir -p "$(dirname "$out")"
echo "nginx on $url (1 worker); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/scaletui calibrate --url "$url" --probe-s 5 --step-s 3 --growth 2 --max-rps 1000000 -o "$out"
