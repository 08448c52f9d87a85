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
dir=$(mktemp -d)
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat > "$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  server {
    listen 127.0.0.1:$port;
    location / { return 200 "ok\n"; }
  }
}
CONF
"$NGINX" -c "$dir/nginx.conf" -p "$dir" 2>/dev/null
cleanup() {
  if [ -f "$dir/nginx.pid" ]; then kill "$(cat "$dir/nginx.pid")" 2>/dev/null || true; fi
  sleep 0.3
  rm -rf "$dir"
}
trap cleanup EXIT
url="http://127.0.0.1:$port/"
for _ in $(seq 50); do
  curl -fs "$url" >/dev/null 2>&1 && break
  sleep 0.1
done
mkdir -p "$(dirname "$out")"
echo "nginx on $url (1 worker); $(nproc) cores; load average $(cut -d' ' -f1-3 /proc/loadavg)"
target/release/scaletui calibrate --url "$url" --probe-s 5 --step-s 3 --growth 2 --max-rps 1000000 -o "$out"
