# Shared by scripts/bench-load.sh and scripts/calibrate-nginx.sh: a local nginx (one worker, a
# fixed 200 "ok" answer, keep-alive) on 127.0.0.1 at a free port, with its own config in a
# temporary folder. `start_nginx` sets $nginx_dir and $url; `stop_nginx` stops it and removes the
# folder. Needs $NGINX (the binary).

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_nginx() {
  nginx_dir=$(mktemp -d)
  local port
  port=$(free_port)
  cat > "$nginx_dir/nginx.conf" <<CONF
worker_processes 1;
pid $nginx_dir/nginx.pid;
error_log $nginx_dir/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $nginx_dir/body;
  proxy_temp_path $nginx_dir/proxy;
  fastcgi_temp_path $nginx_dir/fastcgi;
  uwsgi_temp_path $nginx_dir/uwsgi;
  scgi_temp_path $nginx_dir/scgi;
  server {
    listen 127.0.0.1:$port;
    location / { return 200 "ok\n"; }
  }
}
CONF
  "$NGINX" -c "$nginx_dir/nginx.conf" -p "$nginx_dir" 2>/dev/null
  url="http://127.0.0.1:$port/"
  for _ in $(seq 50); do
    curl -fs "$url" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  curl -fs "$url" >/dev/null || { echo "nginx did not start on $url" >&2; return 1; }
}

stop_nginx() {
  if [ -n "${nginx_dir:-}" ] && [ -f "$nginx_dir/nginx.pid" ]; then kill "$(cat "$nginx_dir/nginx.pid")" 2>/dev/null || true; fi
  sleep 0.3
  [ -n "${nginx_dir:-}" ] && rm -rf "$nginx_dir"
  return 0
}
