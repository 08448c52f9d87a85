#!/usr/bin/env bash
# The whole test suite, on a fresh machine: installs what the tests need (Debian packages), then
# formatting, lints and every test tier that runs here. CI (.ci/run) runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

export DEBIAN_FRONTEND=noninteractive
# Packages the tests drive for real.
need=()
command -v tmux >/dev/null 2>&1 || need+=(tmux)
# The import-circle check of the module structure.
command -v python3 >/dev/null 2>&1 || need+=(python3)
# The Python package's tests build it into a virtual environment.
python3 -c "import venv, ensurepip" >/dev/null 2>&1 || need+=(python3-venv)
# Prometheus 2.42 + promtool (tests/prometheus.rs starts its own instances on free loopback ports).
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "test.sh: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 1
  fi
  # Never let a package start a system service on this machine.
  if [ ! -x /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
  fi
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# No OpenSSL and no aws-lc anywhere in the tree: rustls with ring only.
for banned in openssl-sys aws-lc-sys native-tls; do
  if cargo tree --locked -i "$banned" >/dev/null 2>&1; then
    echo "test.sh: $banned is in the dependency tree" >&2
    exit 1
  fi
done

# The modules of src/ import each other in one direction only.
python3 scripts/check-imports.py

cargo fmt --all -- --check
cargo clippy --locked --all-targets -- -D warnings
cargo clippy --locked -p scaletui-python --all-targets -- -D warnings

# Snapshots are checked, never written, here.
export INSTA_UPDATE=no
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --locked --no-fail-fast
  cargo test --locked --doc
else
  cargo test --locked --no-fail-fast
fi
# The HPA conformance summary line.
cargo test --locked --test hpa_conformance -- --nocapture 2>&1 | grep "hpa conformance:"
# The Python package (the Gymnasium environment, the policy side of exec:/http:): pytest.
./scripts/python-test.sh
