#!/usr/bin/env bash
# The project's test command: formatting, lints, then every test (CPU build).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --check
cargo clippy --all-targets -- -D warnings
cargo test --all-targets
# The official OpenAI SDK against the real server (needs `pip install openai`; .ci/run makes .venv-ci).
"${SDK_PYTHON:-.venv-ci/bin/python}" scripts/openai_sdk_check.py
