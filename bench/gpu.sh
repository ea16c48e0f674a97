#!/usr/bin/env bash
# On a GPU machine: build the CUDA addon, check it against the CPU kernels, time it. One call.
# Where the checkout has its node_modules (a GPU box of one's own), it builds and runs as here. On the
# lent device machine (no Node.js, no network) it runs from what bench/gpu-pack.sh packed into .gpu-carry.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
if [ -d node_modules ] && command -v node >/dev/null; then
  npm run build:cuda
  npm run build
  node dist/bench/gpu.js
  # Sessions on the GPU: only where onnxruntime's CUDA provider is installed (ONNXRUNTIME_NODE_INSTALL=cuda12);
  # otherwise it says so and the rest above stands.
  node dist/bench/gpu-sessions.js
  exit 0
fi
[ -f .gpu-carry/node.xz ] || { echo "no node_modules and no .gpu-carry: run bench/gpu-pack.sh here first, then carry .gpu-carry" >&2; exit 2; }
mkdir -p /tmp/quiver-node/bin
if command -v xz >/dev/null; then xz -dc .gpu-carry/node.xz > /tmp/quiver-node/bin/node
else python3 -c 'import lzma, sys; sys.stdout.buffer.write(lzma.open(sys.argv[1]).read())' .gpu-carry/node.xz > /tmp/quiver-node/bin/node; fi
chmod +x /tmp/quiver-node/bin/node
export PATH="/tmp/quiver-node/bin:$PATH"
node --version
rm -rf dist node_modules && cp -r .gpu-carry/dist dist && cp -r .gpu-carry/node_modules node_modules
# The addon's own CMake build, as cmake-js runs it (node-api headers from the package, output in Release/).
export PATH="$PATH:/usr/local/cuda/bin"
cmake -S native -B build-cuda -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_JS_INC="$PWD/node_modules/node-api-headers/include" \
  -DCMAKE_LIBRARY_OUTPUT_DIRECTORY="$PWD/build-cuda/Release"
cmake --build build-cuda -j "$(nproc)"
node dist/bench/gpu.js
echo "GPU sessions NOT run: onnxruntime-node (288 MB) does not fit the 64 MiB a device call carries, and its CUDA provider cannot be fetched there"
echo "RESULT gpu_sessions ran=0"
