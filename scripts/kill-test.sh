#!/usr/bin/env bash
# Kill test: two replicas behind the project's nginx config (deploy/nginx/siglip-server.conf, its
# upstream pointed at both), closed-loop load through nginx, SIGKILL to one replica mid-run, and
# a restart. Prints what the clients saw (loadgen's answers by status) in three windows: before,
# while one replica is dead, and after it is back. Run by hand (needs nginx; about a minute):
#
#   scripts/kill-test.sh [MODEL_DIR] [CLIENTS]
#
# PROFILE=debug uses the test build's binaries (the test command runs it so, on the tiny model,
# and fails if a client saw anything but 200). Loopback only: the replicas, nginx and the
# clients all live on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
model=${1:-tests/fixtures/models/tiny-p16}
clients=${2:-4}
command -v nginx >/dev/null || { apt-get update -qq && apt-get install -y -qq nginx >/dev/null; }
profile=${PROFILE:-release}
if [ "$profile" = release ]; then
    cargo build --release --quiet -p siglip-server --bin siglip-server --example loadgen
else
    cargo build --quiet -p siglip-server --bin siglip-server --example loadgen
fi
bin=target/$profile/siglip-server
work=$(mktemp -d)
pids=()
cleanup() {
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    [ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

port_a=$(( 20000 + RANDOM % 10000 )); port_b=$(( port_a + 1 )); gateway=$(( port_a + 2 ))
start_replica() {  # PORT -> the pid, once /ready says 200
    "$bin" serve --model "$model" --port "$1" >"$work/replica-$1.log" 2>&1 &
    local pid=$!
    for _ in $(seq 1 200); do
        curl -sf "http://127.0.0.1:$1/ready" >/dev/null && { echo "$pid"; return; }
        sleep 0.1
    done
    echo "replica on $1 never became ready" >&2; exit 1
}
a=$(start_replica "$port_a"); pids+=("$a")
b=$(start_replica "$port_b"); pids+=("$b")

# The shipped config, with the upstream's one server replaced by the two replicas.
sed -e "s/^    server 127.0.0.1:8080;/    server 127.0.0.1:$port_a;\n    server 127.0.0.1:$port_b;/" \
    -e "s/^    listen 8000;/    listen 127.0.0.1:$gateway;/" \
    deploy/nginx/siglip-server.conf >"$work/siglip.conf"
cat >"$work/nginx.conf" <<EOF
worker_processes 1;
pid $work/nginx.pid;
error_log $work/nginx-error.log;
events { worker_connections 256; }
http {
    access_log off;
    client_body_temp_path $work/body;
    proxy_temp_path $work/proxy;
    include $work/siglip.conf;
}
EOF
nginx -c "$work/nginx.conf"
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$gateway/ready" >/dev/null && break; sleep 0.1; done

load() {  # SECONDS LABEL
    target/$profile/examples/loadgen --url "http://127.0.0.1:$gateway" --clients "$clients" \
        --seconds "$1" --image tests/fixtures/images/rgb_46x46.png | sed "s/^/$2 /"
}
load 5 "both up:      " | tee "$work/report"
( sleep 1; kill -9 "$a" ) &
load 6 "A killed:     " | tee -a "$work/report"
a=$(start_replica "$port_a"); pids+=("$a")
load 5 "A restarted:  " | tee -a "$work/report"
# nginx retries what the dead replica dropped: no client may see a failure.
if grep -q '"failed":[1-9]' "$work/report"; then
    echo "kill test: clients saw failures" >&2
    exit 1
fi
echo "kill test: no client saw a failure"
