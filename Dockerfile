# Quiver as a SageMaker bring-your-own multi-model container: sessions on the GPU through onnxruntime's
# CUDA provider (CUDA 12, cuDNN 9), and the CUDA preprocessing kernels.
#   docker build -t quiver .
#   docker run --gpus all -p 8080:8080 -v /path/to/models:/opt/ml/models quiver serve
# Without a GPU the same image serves on the CPU (GET /models/{name} says why).
ARG CUDA_VERSION=12.8.1
ARG UBUNTU=ubuntu24.04

# Node 22, taken from the official image so both stages get the same binary.
FROM node:22-bookworm-slim AS node

# Build: onnxruntime's CUDA provider fetched by its install script, the addon with CUDA (cmake-js +
# nvcc), the TypeScript, then only production dependencies.
FROM nvidia/cuda:${CUDA_VERSION}-cudnn-devel-${UBUNTU} AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ cmake libjpeg-turbo8-dev \
 && rm -rf /var/lib/apt/lists/*
COPY --from=node /usr/local/bin/node /usr/local/bin/node
COPY --from=node /usr/local/lib/node_modules/npm /usr/local/lib/node_modules/npm
RUN ln -s /usr/local/lib/node_modules/npm/bin/npm-cli.js /usr/local/bin/npm
WORKDIR /opt/quiver
COPY package.json package-lock.json .npmrc binding.gyp tsconfig.json ./
COPY native native
COPY scripts scripts
COPY models models
COPY src src
COPY proto proto
COPY bench bench
# onnxruntime-node's install script downloads its CUDA 12 provider libraries into its bin/ folder.
ENV ONNXRUNTIME_NODE_INSTALL=cuda12
# H100/H200 (sm_90) and A100 (sm_80); PTX for newer GPUs.
RUN npm ci --no-audit --no-fund \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 && npm run build:cuda -- --CDCMAKE_CUDA_ARCHITECTURES="80-real;90" \
 && npm prune --omit=dev \
 && rm -rf build/Release/obj.target build-cuda/CMakeFiles

# Runtime: CUDA 12's runtime libraries and cuDNN 9, which the CUDA provider loads (the addon links the
# CUDA runtime statically; the driver comes from the host).
FROM nvidia/cuda:${CUDA_VERSION}-cudnn-runtime-${UBUNTU}
LABEL com.amazonaws.sagemaker.capabilities.multi-models=true \
      com.amazonaws.sagemaker.capabilities.accept-bind-to-port=true \
      org.opencontainers.image.title="quiver" \
      org.opencontainers.image.description="Multi-model ONNX inference server: SageMaker multi-model and MMS APIs"
COPY --from=node /usr/local/bin/node /usr/local/bin/node
# libjpeg-turbo: the addon decodes JPEGs with it.
RUN apt-get update && apt-get install -y --no-install-recommends libjpeg-turbo8 && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 quiver && useradd --uid 10001 --gid quiver --no-create-home --shell /usr/sbin/nologin quiver \
 && mkdir -p /opt/ml/models /tmp/quiver && chown quiver:quiver /tmp/quiver
WORKDIR /opt/quiver
COPY --from=build /opt/quiver/package.json ./
COPY --from=build /opt/quiver/node_modules node_modules
COPY --from=build /opt/quiver/dist dist
COPY --from=build /opt/quiver/proto proto
COPY --from=build /opt/quiver/models models
COPY --from=build /opt/quiver/build build
COPY --from=build /opt/quiver/build-cuda build-cuda
COPY docker/entrypoint.sh docker/entrypoint.sh
ENV NODE_ENV=production \
    QUIVER_WORK_DIR=/tmp/quiver
USER quiver
EXPOSE 8080
ENTRYPOINT ["/opt/quiver/docker/entrypoint.sh"]
CMD ["serve"]
