#!/usr/bin/env bash
# /docs in a real browser: starts target/debug/siglip-server on the tiny fixture model with an
# API key, loads /docs in headless Chromium with every host but the loopback made unresolvable
# (the page must need no internet), checks that Swagger UI rendered every path of
# /openapi.json, and saves a screenshot of the page.
#
#   bash scripts/docs_check.sh [--screenshot PATH]     # default $DOCS_SCREENSHOT, else target/docs.png
#
# Needs Chromium (Debian: apt-get install -y chromium); not run in CI, where a browser would
# cost more than the check is worth: the integration test crates/siglip-server/tests/openapi_docs.rs
# checks the page and its files there. Loopback only.
set -euo pipefail
cd "$(dirname "$0")/.."
screenshot=${DOCS_SCREENSHOT:-target/docs.png}
if [ "${1:-}" = --screenshot ]; then
    screenshot=${2:?--screenshot needs a path}
fi
browser=$(command -v chromium || command -v chromium-browser || true)
[ -n "$browser" ] || { echo "docs_check: no chromium (apt-get install -y chromium)" >&2; exit 1; }

cargo build --quiet -p siglip-server --bin siglip-server
work=$(mktemp -d)
server=
cleanup() {
    [ -n "$server" ] && kill "$server" 2>/dev/null && wait "$server" 2>/dev/null
    rm -rf "$work"
}
trap cleanup EXIT

RUST_LOG=warn target/debug/siglip-server serve --port 0 --api-key docs-check-key \
    --model tests/fixtures/models/tiny-p16 >"$work/stdout" 2>"$work/stderr" &
server=$!
base=
for _ in $(seq 1 600); do
    base=$(sed -n 's/^listening on //p' "$work/stdout")
    [ -n "$base" ] && curl -sf "$base/ready" >/dev/null && break
    kill -0 "$server" 2>/dev/null || { cat "$work/stderr" >&2; exit 1; }
    sleep 0.1
done

# Headless, as root in a container (no sandbox), with no name resolving but the loopback's, and
# enough virtual time for the page's scripts to fetch the document and render it.
run_browser() {
    "$browser" --headless --no-sandbox --disable-gpu --disable-dev-shm-usage \
        --user-data-dir="$work/profile" --no-first-run --hide-scrollbars \
        --host-resolver-rules="MAP * ~NOTFOUND, EXCLUDE 127.0.0.1" \
        --window-size=1280,1800 --virtual-time-budget=15000 "$@" 2>"$work/browser.log"
}

run_browser --dump-dom "$base/docs" >"$work/dom.html"
curl -sf "$base/openapi.json" -o "$work/openapi.json"
missing=0
while read -r path; do
    # Swagger UI renders each operation's path as <span class="opblock-summary-path" data-path=…>.
    if grep -q "data-path=\"$path\"" "$work/dom.html"; then
        echo "rendered: $path"
    else
        echo "NOT rendered: $path" >&2
        missing=1
    fi
done < <(python3 -c 'import json, sys; print("\n".join(json.load(sys.stdin)["paths"]))' \
    <"$work/openapi.json")
[ "$missing" = 0 ] || { echo "docs_check: /docs did not render every path" >&2; exit 1; }

mkdir -p "$(dirname "$screenshot")"
run_browser --screenshot="$screenshot" "$base/docs"
[ -s "$screenshot" ] || { echo "docs_check: no screenshot" >&2; exit 1; }
echo "docs_check: /docs rendered every operation; screenshot $screenshot"
