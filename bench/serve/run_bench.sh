#!/usr/bin/env bash
# Starts `reprise serve` on a free loopback port, measures it with serve_load at 1, 4 and 16
# clients, and stops it.
# Usage: bench/serve/run_bench.sh BUILD_DIR [serve options...]   e.g.
#   bench/serve/run_bench.sh build --parallel 2 -t 1
# Environment: MODEL (default models/stories260K.gguf), BODY (request JSON), REQUESTS (per level),
# SERVE_LOAD (the loader binary; default BUILD_DIR/bench/serve/serve_load).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${1:?usage: run_bench.sh BUILD_DIR [serve options...]}
shift
model=${MODEL:-models/stories260K.gguf}
requests=${REQUESTS:-400}
body=${BODY:-'{"prompt":"Once upon a time","max_tokens":32,"temperature":0,"ignore_eos":true}'}
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

"$build/reprise" serve -m "$model" --host 127.0.0.1 --port "$port" --quiet "$@" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true' EXIT
for _ in $(seq 100); do
  curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
  sleep 0.1
done
"${SERVE_LOAD:-$build/bench/serve/serve_load}" --port "$port" --body "$body" --requests "$requests" \
  --concurrency 1,4,16 --seconds 60
