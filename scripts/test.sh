#!/usr/bin/env bash
# The project's test command: formatting, lints, then every test (CPU build).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy --workspace --all-targets -- -D warnings
cargo test --workspace --all-targets
cargo test --workspace --doc
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
