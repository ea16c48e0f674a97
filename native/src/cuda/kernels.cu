// CUDA version of the fused preprocessing kernel, and the per-worker stream context that feeds it:
// source rows are staged in pinned memory, uploaded, processed and downloaded on the worker's own
// stream; only that stream is synchronized. Same sampling rules as preprocess.cc.
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstring>
#include <string>

#include "../cuda_api.h"

namespace quiver {
namespace cuda {
namespace {

void Check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) throw KernelError("ERR_QUIVER_CUDA", std::string(what) + ": " + cudaGetErrorString(status));
}

struct Geometry {
  int stride;  // bytes per uploaded source row
  int channels;
  int cropX;
  int cropWidth, cropHeight;
  Placement place;
};

__device__ inline void Store(float* out, size_t i, float v) { out[i] = v; }
__device__ inline void Store(__half* out, size_t i, float v) { out[i] = __float2half_rn(v); }

// Calls visit(sourceIndex, weight) for each tap of output index i along one axis.
template <typename Visit>
__device__ inline void ForEachTap(int i, int src, int dst, Visit visit) {
  const double scale = static_cast<double>(src) / dst;
  if (scale > 2.0) {
    const double begin = i * scale;
    const double end = fmin((i + 1) * scale, static_cast<double>(src));
    for (int j = static_cast<int>(floor(begin)); j < end; j++) {
      visit(j, static_cast<float>((fmin(end, j + 1.0) - fmax(begin, static_cast<double>(j))) / scale));
    }
    return;
  }
  double s = fmax((i + 0.5) * scale - 0.5, 0.0);
  int x0 = static_cast<int>(floor(s));
  double f = s - x0;
  if (x0 >= src - 1) {
    x0 = src - 1;
    f = 0;
  }
  visit(x0, static_cast<float>(1.0 - f));
  if (f != 0) visit(min(x0 + 1, src - 1), static_cast<float>(f));
}

template <typename T>
__global__ void PreprocessKernel(const uint8_t* __restrict__ src, Geometry g, Affine affine, T* __restrict__ out) {
  const int x = blockIdx.x * blockDim.x + threadIdx.x;
  const int y = blockIdx.y * blockDim.y + threadIdx.y;
  const Placement& p = g.place;
  if (x >= p.tensorWidth || y >= p.tensorHeight) return;
  const size_t plane = static_cast<size_t>(p.tensorWidth) * p.tensorHeight;
  const size_t at = static_cast<size_t>(y) * p.tensorWidth + x;
  const int cx = x - p.padLeft;
  const int cy = y - p.padTop;
  if (cx < 0 || cy < 0 || cx >= p.contentWidth || cy >= p.contentHeight) {
    for (int c = 0; c < 3; c++) Store(out, c * plane + at, affine.pad[c]);
    return;
  }
  float acc[4] = {0.f, 0.f, 0.f, 0.f};
  const int channels = g.channels;
  ForEachTap(cy, g.cropHeight, p.contentHeight, [&](int sy, float wy) {
    const uint8_t* row = src + static_cast<size_t>(sy) * g.stride + static_cast<size_t>(g.cropX) * channels;
    ForEachTap(cx, g.cropWidth, p.contentWidth, [&](int sx, float wx) {
      const uint8_t* px = row + static_cast<size_t>(sx) * channels;
      const float w = wy * wx;
      for (int c = 0; c < 3 && c < channels; c++) acc[c] += w * px[c];
    });
  });
  for (int c = 0; c < 3; c++) {
    const int sc = channels == 1 ? 0 : (affine.bgr ? 2 - c : c);
    Store(out, c * plane + at, acc[sc] * affine.a[c] + affine.b[c]);
  }
}

// Grows a buffer to at least `bytes`; device or pinned host memory.
void Reserve(void** buffer, size_t* capacity, size_t bytes, bool pinned) {
  if (*capacity >= bytes) return;
  if (*buffer) Check(pinned ? cudaFreeHost(*buffer) : cudaFree(*buffer), "free");
  *buffer = nullptr;
  *capacity = 0;
  Check(pinned ? cudaHostAlloc(buffer, bytes, cudaHostAllocDefault) : cudaMalloc(buffer, bytes), pinned ? "cudaHostAlloc" : "cudaMalloc");
  *capacity = bytes;
}

}  // namespace

DeviceProbe Probe() {
  int count = 0;
  const cudaError_t status = cudaGetDeviceCount(&count);
  if (status != cudaSuccess) return {0, cudaGetErrorString(status)};
  return {count, ""};
}

MemoryInfo GetMemoryInfo(int device) {
  Check(cudaSetDevice(device), "cudaSetDevice");
  size_t freeBytes = 0, totalBytes = 0;
  Check(cudaMemGetInfo(&freeBytes, &totalBytes), "cudaMemGetInfo");
  return {freeBytes, totalBytes};
}

StreamContext::StreamContext(int device) : device_(device) {
  Check(cudaSetDevice(device), "cudaSetDevice");
  cudaStream_t stream;
  Check(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking), "cudaStreamCreate");
  stream_ = stream;
}

void StreamContext::Trim() {
  std::lock_guard<std::mutex> lock(mutex_);
  Check(cudaSetDevice(device_), "cudaSetDevice");
  Check(cudaStreamSynchronize(static_cast<cudaStream_t>(stream_)), "cudaStreamSynchronize");
  if (deviceSrc_) cudaFree(deviceSrc_);
  if (deviceOut_) cudaFree(deviceOut_);
  if (pinnedSrc_) cudaFreeHost(pinnedSrc_);
  if (pinnedOut_) cudaFreeHost(pinnedOut_);
  deviceSrc_ = deviceOut_ = pinnedSrc_ = pinnedOut_ = nullptr;
  deviceSrcBytes_ = deviceOutBytes_ = pinnedSrcBytes_ = pinnedOutBytes_ = 0;
}

StreamContext::~StreamContext() {
  cudaSetDevice(device_);
  cudaStreamSynchronize(static_cast<cudaStream_t>(stream_));
  if (deviceSrc_) cudaFree(deviceSrc_);
  if (deviceOut_) cudaFree(deviceOut_);
  if (pinnedSrc_) cudaFreeHost(pinnedSrc_);
  if (pinnedOut_) cudaFreeHost(pinnedOut_);
  cudaStreamDestroy(static_cast<cudaStream_t>(stream_));
}

KernelTiming StreamContext::Benchmark(const SourceImage& src, const CropRect& crop, const Placement& place, const Affine& affine,
                                     const Output& out, int iterations) {
  std::lock_guard<std::mutex> lock(mutex_);
  PreprocessLocked(src, crop, place, affine, out);  // stages the buffers
  auto stream = static_cast<cudaStream_t>(stream_);
  const size_t rowBytes = static_cast<size_t>(src.width) * src.channels;
  const size_t srcBytes = rowBytes * crop.height;
  const size_t elementBytes = out.type == OutputType::Float32 ? sizeof(float) : sizeof(__half);
  const size_t outBytes = 3 * static_cast<size_t>(place.tensorWidth) * place.tensorHeight * elementBytes;
  Geometry g{static_cast<int>(rowBytes), src.channels, crop.x, crop.width, crop.height, place};
  const dim3 block(32, 8);
  const dim3 grid((place.tensorWidth + block.x - 1) / block.x, (place.tensorHeight + block.y - 1) / block.y);
  cudaEvent_t start, stop;
  Check(cudaEventCreate(&start), "cudaEventCreate");
  Check(cudaEventCreate(&stop), "cudaEventCreate");
  float kernelMs = 0, copyMs = 0;
  Check(cudaEventRecord(start, stream), "cudaEventRecord");
  for (int i = 0; i < iterations; i++) {
    if (out.type == OutputType::Float32) {
      PreprocessKernel<float><<<grid, block, 0, stream>>>(static_cast<const uint8_t*>(deviceSrc_), g, affine, static_cast<float*>(deviceOut_));
    } else {
      PreprocessKernel<__half><<<grid, block, 0, stream>>>(static_cast<const uint8_t*>(deviceSrc_), g, affine, static_cast<__half*>(deviceOut_));
    }
  }
  Check(cudaEventRecord(stop, stream), "cudaEventRecord");
  Check(cudaEventSynchronize(stop), "cudaEventSynchronize");
  Check(cudaEventElapsedTime(&kernelMs, start, stop), "cudaEventElapsedTime");
  const size_t moved = srcBytes + outBytes;
  void* from = nullptr;
  void* to = nullptr;
  Check(cudaMalloc(&from, moved), "cudaMalloc");
  Check(cudaMalloc(&to, moved), "cudaMalloc");
  Check(cudaEventRecord(start, stream), "cudaEventRecord");
  for (int i = 0; i < iterations; i++) Check(cudaMemcpyAsync(to, from, moved, cudaMemcpyDeviceToDevice, stream), "copy");
  Check(cudaEventRecord(stop, stream), "cudaEventRecord");
  Check(cudaEventSynchronize(stop), "cudaEventSynchronize");
  Check(cudaEventElapsedTime(&copyMs, start, stop), "cudaEventElapsedTime");
  cudaFree(from);
  cudaFree(to);
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  return {kernelMs / iterations, copyMs / iterations, static_cast<double>(moved)};
}

void StreamContext::Preprocess(const SourceImage& src, const CropRect& crop, const Placement& place, const Affine& affine, const Output& out) {
  std::lock_guard<std::mutex> lock(mutex_);
  PreprocessLocked(src, crop, place, affine, out);
}

void StreamContext::PreprocessLocked(const SourceImage& src, const CropRect& crop, const Placement& place, const Affine& affine, const Output& out) {
  ValidateArguments(src, crop, place, out);
  // The calling thread (a libuv worker) may not have this device current yet.
  Check(cudaSetDevice(device_), "cudaSetDevice");
  auto stream = static_cast<cudaStream_t>(stream_);
  const size_t rowBytes = static_cast<size_t>(src.width) * src.channels;
  const size_t srcBytes = rowBytes * crop.height;
  const size_t elementBytes = out.type == OutputType::Float32 ? sizeof(float) : sizeof(__half);
  const size_t outBytes = 3 * static_cast<size_t>(place.tensorWidth) * place.tensorHeight * elementBytes;

  Reserve(&pinnedSrc_, &pinnedSrcBytes_, srcBytes, true);
  Reserve(&deviceSrc_, &deviceSrcBytes_, srcBytes, false);
  Reserve(&pinnedOut_, &pinnedOutBytes_, outBytes, true);
  Reserve(&deviceOut_, &deviceOutBytes_, outBytes, false);

  // Only the rows the crop spans travel.
  std::memcpy(pinnedSrc_, src.data + rowBytes * crop.y, srcBytes);
  Check(cudaMemcpyAsync(deviceSrc_, pinnedSrc_, srcBytes, cudaMemcpyHostToDevice, stream), "upload");

  Geometry g{static_cast<int>(rowBytes), src.channels, crop.x, crop.width, crop.height, place};
  const dim3 block(32, 8);
  const dim3 grid((place.tensorWidth + block.x - 1) / block.x, (place.tensorHeight + block.y - 1) / block.y);
  const auto* source = static_cast<const uint8_t*>(deviceSrc_);
  if (out.type == OutputType::Float32) {
    PreprocessKernel<float><<<grid, block, 0, stream>>>(source, g, affine, static_cast<float*>(deviceOut_));
  } else {
    PreprocessKernel<__half><<<grid, block, 0, stream>>>(source, g, affine, static_cast<__half*>(deviceOut_));
  }
  Check(cudaGetLastError(), "kernel launch");
  Check(cudaMemcpyAsync(pinnedOut_, deviceOut_, outBytes, cudaMemcpyDeviceToHost, stream), "download");
  Check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
  std::memcpy(static_cast<uint8_t*>(out.data) + out.offset * elementBytes, pinnedOut_, outBytes);
}

}  // namespace cuda
}  // namespace quiver
