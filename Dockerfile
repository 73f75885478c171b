# syntax=docker/dockerfile:1
# siglip-server container image: a Rust build stage and a slim runtime stage.
#
#   podman build -t siglip-server .                       # official base images
#   podman build --build-arg RUST_IMAGE=localhost/rust:1.95 \
#                --build-arg RUNTIME_IMAGE=localhost/debian:bookworm -t siglip-server .
#
# Runtime: the server listens on 0.0.0.0:8080 as user 10001, reads /etc/siglip-server/config.toml,
# loads --model from a read-only volume (/models/NAME) or the hub cache in HF_HOME=/cache/huggingface,
# and writes nothing else: it runs with a read-only root file system.

ARG RUST_IMAGE=docker.io/library/rust:1.95-bookworm
ARG RUNTIME_IMAGE=docker.io/library/debian:bookworm-slim

FROM ${RUST_IMAGE} AS build
# nasm: libjpeg-turbo's SIMD for the Pillow-exact JPEG decoder (it builds without, slower).
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends nasm \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY crates ./crates
COPY config ./config
# The registry and target directory live in BuildKit cache mounts: a code change rebuilds only
# the workspace's own crates, with no hand-made dummy sources to keep in step with Cargo.toml.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p siglip-server \
    && install -s target/release/siglip-server /usr/local/bin/siglip-server

FROM ${RUNTIME_IMAGE}
# CA certificates for the Hugging Face hub, taken from the build stage.
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY --from=build /usr/local/bin/siglip-server /usr/local/bin/siglip-server
COPY config/default.toml /etc/siglip-server/config.toml
ENV SIGLIP_CONFIG=/etc/siglip-server/config.toml \
    SIGLIP_HOST=0.0.0.0 \
    SIGLIP_PORT=8080 \
    HF_HOME=/cache/huggingface \
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/siglip-server", "serve"]
