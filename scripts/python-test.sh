#!/usr/bin/env bash
# The Python package (python/): builds it into a virtual environment of its own
# (target/py-venv, pinned versions from PyPI) and runs its tests. test.sh runs this.
set -euo pipefail
cd "$(dirname "$0")/.."

venv=target/py-venv
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
"$venv/bin/python" -m pip install -q --disable-pip-version-check \
  maturin==1.16.0 gymnasium==1.4.0 numpy==2.4.6 pytest==9.2.0
# The tests run the binary for the headless side of the comparisons: built as the Rust tests
# build it (with the dev-dependencies' features; after test.sh's test run nothing is compiled).
cargo test --locked --no-run --test external_policy
export SCALETUI_BIN="$PWD/target/debug/scaletui"
export PATH="$PWD/$venv/bin:$PATH"
# The debug profile builds in a fraction of release's time; a user's `pip install ./python` is release.
MATURIN_PEP517_ARGS="--profile dev" "$venv/bin/python" -m pip install -q --disable-pip-version-check \
  --no-build-isolation --force-reinstall --no-deps ./python
"$venv/bin/python" -m pytest -q python/tests "$@"
