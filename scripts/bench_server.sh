#!/usr/bin/env bash
# End-to-end server figures: starts the release server on a model, waits for /ready, then runs
# examples/loadgen.rs (POST /v1/classify, one ~1 MP JPEG, 8 labels already in the label cache)
# for each client count, and prints one JSON line per run with the server's peak RSS.
#
#   scripts/bench_server.sh MODEL_DIR [DTYPE] [SECONDS] [CLIENTS...]
#   scripts/bench_server.sh target/bigmodels/siglip-base-384-random bf16 30 1 2 8
#
# Extra server flags go in SERVER_FLAGS (e.g. SERVER_FLAGS="--max-batch-size 1"), extra
# load-generator flags in LOADGEN_FLAGS (e.g. "--images-per-request 4" or "--labels a,b").
set -euo pipefail
cd "$(dirname "$0")/.."

model=${1:?usage: bench_server.sh MODEL_DIR [DTYPE] [SECONDS] [CLIENTS...]}
dtype=${2:-f32}
seconds=${3:-30}
shift $(( $# < 3 ? $# : 3 ))
clients=("$@")
[ ${#clients[@]} -gt 0 ] || clients=(1 2 8)

cargo build --release --quiet -p siglip-server --bin siglip-server --example loadgen
port=$(( 20000 + RANDOM % 20000 ))
log=$(mktemp)
# shellcheck disable=SC2086  # SERVER_FLAGS is a list of flags
target/release/siglip-server serve --model "$model" --dtype "$dtype" --port "$port" \
    --queue-capacity 256 ${SERVER_FLAGS:-} >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
    kill -0 $server 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.5
done
for n in "${clients[@]}"; do
    # shellcheck disable=SC2086  # LOADGEN_FLAGS is a list of flags
    target/release/examples/loadgen --url "http://127.0.0.1:$port" --clients "$n" \
        --seconds "$seconds" --pid "$server" ${LOADGEN_FLAGS:-} |
        sed "s/^{/{\"dtype\":\"$dtype\",/"
done
