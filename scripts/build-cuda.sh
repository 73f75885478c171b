#!/usr/bin/env bash
# Builds siglip-server with the `cuda` feature on a machine without a GPU or a CUDA install:
# nvcc, headers and libraries come from NVIDIA's PyPI wheels (CUDA 13.0, for driver 580), and a
# link-time stub stands in for the driver's libcuda.so (its SONAME is libcuda.so.1, so the real
# driver library is the one loaded at run time on a GPU machine).
#
#   bash scripts/build-cuda.sh            # -> target/cuda/release/siglip-server
#   CUDA_COMPUTE_CAP=80 bash scripts/build-cuda.sh   # for A100 instead of H100/H200 (90)
#
# On the GPU machine, cuBLAS, cuRAND and NVRTC must be on LD_LIBRARY_PATH (PyTorch ships them).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${CUDA_VENV:-$ROOT/target/cuda-venv}
CUDA=$ROOT/target/cuda-home

if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/pip" install -q nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
  nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85 nvidia-cuda-nvrtc==13.0.88 \
  nvidia-curand==10.4.0.35 nvidia-cublas==13.0.2.14
NV=$("$VENV/bin/python" -c 'import nvidia, os; print(os.path.join(list(nvidia.__path__)[0], "cu13"))')

# A folder shaped like a CUDA install.
rm -rf "$CUDA" && mkdir -p "$CUDA/lib/stubs"
ln -s "$NV/bin" "$CUDA/bin"
ln -s "$NV/include" "$CUDA/include"
ln -s "$NV/nvvm" "$CUDA/nvvm"
for lib in "$NV"/lib/*.so.*; do
  base=$(basename "$lib")
  ln -sf "$lib" "$CUDA/lib/$base"
  ln -sf "$lib" "$CUDA/lib/${base%%.so.*}.so"
done

# The driver stub: every cu* entry point cudarc declares, as an empty function.
CUDARC=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 1 -name 'index.crates.io-*' \
  -exec find {} -maxdepth 1 -name 'cudarc-0.19.*' \; | sort | tail -1)
if [ -z "$CUDARC" ]; then
  cargo fetch --quiet
  CUDARC=$(find "${CARGO_HOME:-$HOME/.cargo}/registry/src" -maxdepth 2 -name 'cudarc-0.19.*' | sort | tail -1)
fi
grep -oh 'load::<_F>("cu[A-Za-z0-9_]*")' "$CUDARC/src/driver/sys/mod.rs" \
  | sed 's/.*("\(.*\)")/void \1(void) {}/' | sort -u > "$CUDA/lib/stubs/cuda_stub.c"
gcc -shared -fPIC -Wl,-soname,libcuda.so.1 -o "$CUDA/lib/stubs/libcuda.so" "$CUDA/lib/stubs/cuda_stub.c"
echo "driver stub: $(wc -l < "$CUDA/lib/stubs/cuda_stub.c") entry points"

export CUDA_HOME=$CUDA CUDA_PATH=$CUDA CUDA_ROOT=$CUDA PATH=$CUDA/bin:$PATH
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}
nvcc --version | tail -2
cargo build --release -p siglip-server --features cuda --target-dir target/cuda
strip target/cuda/release/siglip-server
ls -l target/cuda/release/siglip-server
echo "NEEDED: $(readelf -d target/cuda/release/siglip-server | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | tr '\n' ' ')"
