#!/usr/bin/env bash
# Here, before a device call: what bench/gpu.sh needs on the GPU machine, which has CUDA, cmake and nvcc
# but no Node.js, no network and room for 64 MiB of working tree. Packs into .gpu-carry/ (ignored):
# node itself (xz, ~25 MB), the compiled dist/, and the two header packages the addon's CMake build reads.
# Then: device run with command `bash bench/gpu.sh` and carry [".gpu-carry"].
set -euo pipefail
cd "$(dirname "$0")/.."
npm run build
rm -rf .gpu-carry
mkdir -p .gpu-carry/node_modules
xz -T0 -6 -c "$(command -v node)" > .gpu-carry/node.xz
cp -r dist .gpu-carry/dist
cp -r node_modules/node-addon-api node_modules/node-api-headers .gpu-carry/node_modules/
du -sh .gpu-carry
