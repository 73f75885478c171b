#!/usr/bin/env bash
# The project's test command: formatting, lints, then every test (CPU build).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
# Every shell script parses (the hand-run ones, soak.sh, bench_server.sh, container-check.sh, too).
for script in scripts/*.sh .ci/run; do bash -n "$script"; done
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets
cargo test --workspace --doc
# The kernels and the tiny models' parity again at each lower instruction-set level this CPU has
# (SIGLIP_CPU_ISA caps the kernels; the runs above used the best). The server and classify tests
# go through every level themselves (tests/cpu_isa.rs, tests/cli.rs).
flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null || true) "
lower_levels=generic
if [[ $flags == *" avx512f "* && $flags == *" avx512bw "* && $flags == *" avx2 "* && $flags == *" fma "* ]]; then
    lower_levels="generic avx2"
fi
for level in $lower_levels; do
    SIGLIP_CPU_ISA=$level cargo test -p siglip-kernels
    SIGLIP_CPU_ISA=$level cargo test -p siglip --test model_parity --test siglip2_parity \
        --test long_texts
done
# The products against the f64 reference again under small cache blocks (SIGLIP_CPU_BLOCKING):
# many k blocks, partial column blocks, one strip per row block. The server's blocking settings
# and calibration are tested in tests/cpu_blocking.rs.
SIGLIP_CPU_BLOCKING=kc_f32=40,kc_bf16=34,nc_panels=3,row_strips=1 \
    cargo test -p siglip-kernels --test kernels_matmul
# The calibration's benchmark (benches/README.md section 11) still runs, on small shapes.
cargo run --quiet -p siglip-kernels --example calibrate -- --repeat 2 --tokens 20 --hidden 64 \
    --intermediate 96
# The workspace builds for aarch64 (cargo check; there is no ARM machine to run it on).
bash scripts/aarch64-check.sh
# The pure-Rust JPEG decoder (the libjpeg feature off) still builds and stays within its bounds.
cargo test -p siglip --no-default-features --test jpeg_parity --test preprocess_parity \
    --test naflex_preprocess_parity
# Two replicas behind the shipped nginx config, one SIGKILLed under load: no client sees it.
PROFILE=debug bash scripts/kill-test.sh
# The container build context still builds (the Dockerfile is not built in CI: no daemon here).
bash scripts/docker-context.sh
# The official OpenAI SDK against the real server (scripts/requirements-sdk.txt; .ci/run makes .venv-ci).
"${SDK_PYTHON:-.venv-ci/bin/python}" scripts/openai_sdk_check.py
# The Hugging Face client's zero-shot image classification against the server's root route.
"${SDK_PYTHON:-.venv-ci/bin/python}" scripts/hf_client_check.py
# The OpenAPI document: openapi-spec-validator, then a bounded schemathesis pass against the
# server (scripts/requirements-api-check.txt, in the same venv).
bash scripts/api_check.sh
# Every fuzz target for 30 s from its committed corpus (cargo-fuzz on the nightly toolchain, with
# AddressSanitizer): a crash, a leak of the decode limits or a wrong tokenization fails the run.
bash scripts/fuzz.sh 30
