// The CUDA half of the addon, as the binding sees it. Implemented in cuda/kernels.cu, which only the
// cmake-js CUDA build compiles (it defines QUIVER_WITH_CUDA).
#pragma once

#include <cstddef>
#include <mutex>
#include <string>

#include "preprocess.h"

namespace quiver {
namespace cuda {

struct DeviceProbe {
  int deviceCount;
  std::string error;  // empty when the runtime answered
};

struct KernelTiming {
  double kernelMs;     // mean time of one kernel run, device buffers resident
  double copyMs;       // mean time of a device-to-device copy of the same bytes
  double bytesMoved;   // bytes the kernel reads and writes
};

struct MemoryInfo {
  size_t freeBytes;
  size_t totalBytes;
};

DeviceProbe Probe();
MemoryInfo GetMemoryInfo(int device);

// One per worker thread: its own stream, device buffers and pinned staging buffers, grown on demand
// and freed on destruction. Jobs come from several libuv threads at once (a batch prepares its images
// side by side) and share the staging buffers, so one job at a time holds them (mutex_).
class StreamContext {
 public:
  explicit StreamContext(int device);
  ~StreamContext();
  StreamContext(const StreamContext&) = delete;
  StreamContext& operator=(const StreamContext&) = delete;

  void Preprocess(const SourceImage& src, const CropRect& crop, const Placement& place, const Affine& affine, const Output& out);
  // Times the kernel alone on the buffers of one staged job, against a device-to-device copy.
  KernelTiming Benchmark(const SourceImage& src, const CropRect& crop, const Placement& place, const Affine& affine, const Output& out, int iterations);
  size_t DeviceBytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return deviceSrcBytes_ + deviceOutBytes_;
  }
  size_t PinnedBytes() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return pinnedSrcBytes_ + pinnedOutBytes_;
  }
  int Device() const { return device_; }
  // Frees the device and pinned buffers (they grow again on the next job): an idle worker gives its
  // device memory back.
  void Trim();

 private:
  // Stages one job and runs it; the caller holds mutex_.
  void PreprocessLocked(const SourceImage& src, const CropRect& crop, const Placement& place, const Affine& affine, const Output& out);

  mutable std::mutex mutex_;
  int device_;
  void* stream_ = nullptr;
  void* deviceSrc_ = nullptr;
  void* deviceOut_ = nullptr;
  void* pinnedSrc_ = nullptr;
  void* pinnedOut_ = nullptr;
  size_t deviceSrcBytes_ = 0, deviceOutBytes_ = 0, pinnedSrcBytes_ = 0, pinnedOutBytes_ = 0;
};

}  // namespace cuda
}  // namespace quiver
