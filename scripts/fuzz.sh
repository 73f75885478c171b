#!/usr/bin/env bash
# Fuzzing (cargo-fuzz, libFuzzer, AddressSanitizer) of the code that reads untrusted input: image
# decoding (libjpeg-turbo's C code included), data URLs and base64, JSON and multipart request
# bodies, both tokenizers. The targets and what each checks: fuzz/fuzz_targets/*.rs.
#
#   scripts/fuzz.sh [SECONDS]                 build, then run every target SECONDS each (45)
#   FUZZ_TARGETS="tokenizer multipart" scripts/fuzz.sh 600
#   scripts/fuzz.sh minimize TARGET DIR...    merge what DIR... adds into fuzz/corpus/TARGET
#
# Each run starts from the committed seeds (fuzz/corpus/TARGET, left unchanged) and grows a
# scratch corpus in fuzz/corpus-run/TARGET (ignored by git; `minimize` it into the seeds when a
# long run found coverage worth keeping). A crash, an out-of-memory (over 2 GiB resident, or one
# allocation over 2 GiB) or an input running over 60 s fails the run: the input is written to
# fuzz/artifacts/TARGET/, to replay with `cargo +nightly fuzz run TARGET fuzz/artifacts/...`.
# Exits non-zero if any target failed. Needs the nightly toolchain (`cargo +nightly`) beside the
# pinned one, a C compiler and nasm (for libjpeg-turbo); installs cargo-fuzz when missing.
set -euo pipefail
cd "$(dirname "$0")/.."

CARGO_FUZZ_VERSION=0.13.2
ALL_TARGETS="image_decode image_input request_json multipart tokenizer gemma_tokenizer"
targets=${FUZZ_TARGETS:-$ALL_TARGETS}

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: the nightly toolchain is missing (cargo +nightly)" >&2
    exit 1
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo +nightly install cargo-fuzz --version "$CARGO_FUZZ_VERSION" --locked
fi

# libjpeg-turbo (mozjpeg-sys) and ring are C, built by the cc crate: compile them under
# AddressSanitizer too (gcc's instrumentation runs on the Rust runtime's ASan), so that a memory
# error inside libjpeg is reported where it happens. (Coverage feedback inside the C code would
# need clang's -fsanitize-coverage, which gcc lacks; the machines have no clang.)
export CFLAGS="${CFLAGS:-} -fsanitize=address -fno-omit-frame-pointer"

if [ "${1:-}" = minimize ]; then
    target=${2:?usage: scripts/fuzz.sh minimize TARGET DIR...}
    shift 2
    cargo +nightly fuzz build "$target"
    # Keeps every committed seed; adds a small set (greedy set cover, smallest inputs first) of
    # the inputs that reach edges the seeds do not (edges only: hit counts would keep thousands).
    cargo +nightly fuzz run "$target" "fuzz/corpus/$target" "$@" -- \
        -set_cover_merge=1 -use_counters=0 -rss_limit_mb=2048 -timeout=60
    du -sh "fuzz/corpus/$target"
    exit 0
fi

seconds=${1:-45}
start=$(date +%s)
cargo +nightly fuzz build
echo "fuzz.sh: built in $(( $(date +%s) - start )) s"

mkdir -p fuzz/target/logs
failed=()
for target in $targets; do
    run="fuzz/corpus-run/$target"
    log="fuzz/target/logs/$target.log"
    rm -rf "$run" && mkdir -p "$run"
    echo "fuzz.sh: $target for $seconds s"
    if ! cargo +nightly fuzz run "$target" "$run" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=60 -print_final_stats=1 \
        >"$log" 2>&1; then
        failed+=("$target")
        tail -n 60 "$log"
    fi
    # libFuzzer's last status line: executions, coverage (cov: edges, ft: features), corpus.
    grep -E '^#[0-9]+' "$log" | tail -n 1 || true
    grep -E '^Done [0-9]+ runs' "$log" || true
done

echo "fuzz.sh: finished in $(( $(date +%s) - start )) s"
if [ ${#failed[@]} -gt 0 ]; then
    echo "fuzz.sh: FAILED: ${failed[*]} (inputs in fuzz/artifacts/, logs in fuzz/target/logs/)" >&2
    exit 1
fi
