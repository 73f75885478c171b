#!/usr/bin/env bash
# Soak: the release server on a model, open-loop load at 80% of its measured capacity with 10% bad
# requests (an image that is not one), for DURATION seconds; one JSON line per interval, then a
# plot of resident memory, p50/p99 latency and throughput over time. Run by hand (not in CI):
#
#   scripts/soak.sh MODEL_DIR [DTYPE] [DURATION] [OUT_DIR]
#   scripts/soak.sh target/bigmodels/siglip-base-384-random bf16 1800 benches
#
# Writes OUT_DIR/soak.jsonl and OUT_DIR/soak.png (the plot needs matplotlib:
# scripts/requirements-plot.txt). Loopback only.
#
# INTERVAL=SECONDS sets the lines' interval (30). STALL_AT=S STALL_FOR=D freezes the server
# (SIGSTOP) for D seconds, S seconds into the soak, while the load goes on: a host hiccup, whose
# backlog shows what resident memory does after a burst.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:?MODEL_DIR}
dtype=${2:-bf16}
duration=${3:-1800}
out=${4:-benches}
cargo build --release --quiet -p siglip-server --bin siglip-server --example loadgen --example soak
port=$(( 20000 + RANDOM % 20000 ))
log=$(mktemp)
target/release/siglip-server serve --model "$model" --dtype "$dtype" --port "$port" >"$log" 2>&1 &
server=$!
trap 'kill $server 2>/dev/null; wait $server 2>/dev/null; rm -f "$log"' EXIT
for _ in $(seq 1 600); do
    curl -sf "http://127.0.0.1:$port/ready" >/dev/null && break
    kill -0 $server 2>/dev/null || { cat "$log"; exit 1; }
    sleep 0.5
done
# Capacity: closed-loop, two clients (one per core), 1 MP JPEG and 6 cached labels.
capacity=$(target/release/examples/loadgen --url "http://127.0.0.1:$port" --clients 2 --seconds 30 |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["images_per_s"])')
rate=$(python3 -c "print(round(0.8 * $capacity, 3))")
if [ -n "${STALL_AT:-}" ]; then
    (sleep "$STALL_AT" && kill -STOP $server && echo "stalled at ${STALL_AT} s" >&2 &&
        sleep "${STALL_FOR:-3}" && kill -CONT $server && echo "resumed" >&2) &
fi
echo "capacity $capacity images/s; soaking at $rate requests/s (10% bad) for $duration s" >&2
target/release/examples/soak --url "http://127.0.0.1:$port" --pid "$server" --rate "$rate" \
    --seconds "$duration" --bad-share 0.1 --interval "${INTERVAL:-30}" | tee "$out/soak.jsonl"
"${PLOT_PYTHON:-python3}" scripts/plot_soak.py "$out/soak.jsonl" "$out/soak.png" \
    --title "siglip-server soak: $(basename "$model") $dtype, $rate req/s (80% of $capacity), 10% bad"
