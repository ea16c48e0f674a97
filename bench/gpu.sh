#!/usr/bin/env bash
# On a GPU machine: build the CUDA addon, check it against the CPU kernels, time it. One call.
set -euo pipefail
cd "$(dirname "$0")/.."
export ONNXRUNTIME_NODE_INSTALL=skip
[ -d node_modules ] || npm ci --no-audit --no-fund
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
npm run build:cuda
npm run build
node dist/bench/gpu.js
# Sessions on the GPU: only where onnxruntime's CUDA provider is installed (ONNXRUNTIME_NODE_INSTALL=cuda12);
# otherwise it says so and the rest above stands.
node dist/bench/gpu-sessions.js
