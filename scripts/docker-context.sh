#!/usr/bin/env bash
# A cheap guard on the container build, run by scripts/test.sh: builds the server from exactly the
# files .dockerignore lets into the build context, and checks that every COPY in the Dockerfiles
# finds its source there. A manifest entry (bench, test, crate) whose file the context lacks, or a
# COPY of a path the context does not hold, fails here instead of in the next image build.
set -euo pipefail
cd "$(dirname "$0")/.."
context=$(mktemp -d)
trap 'rm -rf "$context"' EXIT

# .dockerignore is an allow-list: "*", then one "!PATH" per path let through.
[ "$(grep -vE '^(#|$)' .dockerignore | head -1)" = "*" ] || {
    echo ".dockerignore must start with '*' (an allow-list)" >&2
    exit 1
}
sed -n 's:^!\(.*[^/]\)/*$:\1:p' .dockerignore | while read -r path; do
    cp -r --parents "$path" "$context"
done

# Every COPY source of the build stages (not --from=) must be in the context.
for dockerfile in Dockerfile Dockerfile.cuda; do
    grep -E '^COPY ' "$dockerfile" | grep -v -- '--from=' | while read -r _ args; do
        read -r -a words <<<"$args"
        for source in "${words[@]:0:${#words[@]}-1}"; do
            [ -e "$context/$source" ] || {
                echo "$dockerfile copies $source, which .dockerignore keeps out" >&2
                exit 1
            }
        done
    done
done

# The Dockerfile's build command, in the context (compiled dependencies shared with the tests').
CARGO_TARGET_DIR="$PWD/target" cargo build --locked -p siglip-server \
    --manifest-path "$context/Cargo.toml"
echo "docker context: builds from $(find "$context" -type f | wc -l) files"
