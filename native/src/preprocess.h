// CPU image preprocessing kernels: crop, resize (bilinear with half-pixel centres, or area averaging
// when shrinking by more than 2x), letterbox placement, channel order, scale + mean/std normalize and
// HWC -> CHW, written as float32 or float16 straight into the caller's tensor. Pure C++: no Node here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace quiver {

// Thrown for arguments the kernels refuse; the binding turns it into a JS error with this code.
struct KernelError : std::runtime_error {
  std::string code;
  KernelError(const std::string& c, const std::string& message) : std::runtime_error(message), code(c) {}
};

struct SourceImage {
  const uint8_t* data;
  size_t byteLength;
  int width;
  int height;
  int channels;  // 1, 3 or 4 (alpha ignored)
};

struct CropRect {
  int x, y, width, height;
};

// Where the (cropped) picture lands in the tensor; mirrors ResizePlan on the TypeScript side.
struct Placement {
  int tensorWidth, tensorHeight;
  int contentWidth, contentHeight;
  int padLeft, padTop;
};

// out = pixel * a[c] + b[c] for output channel c; pad[c] is the already-normalized pad value.
struct Affine {
  float a[3];
  float b[3];
  float pad[3];
  bool bgr;
};

enum class OutputType { Float32, Float16 };

struct Output {
  void* data;          // float* or uint16_t*
  size_t elementCount; // of the whole buffer
  size_t offset;       // first element of this image (batch index * 3 * H * W)
  OutputType type;
};

// Largest side the kernels accept; larger requests are refused before anything is allocated.
constexpr int kMaxSide = 1 << 15;

// The vector paths of the kernel, in order; a job names the best it may take (tests compare them).
enum class CpuKernels { Baseline = 0, Avx2 = 1, Avx512Vbmi = 2 };

// The best path the running CPU has, at most `cap`.
CpuKernels ActiveCpuKernels(CpuKernels cap = CpuKernels::Avx512Vbmi);
const char* CpuKernelsName(CpuKernels kernels);

// Checks every argument; throws KernelError naming the first problem.
void ValidateArguments(const SourceImage& src, const CropRect& crop, const Placement& place, const Output& out);

// Runs the fused kernel. Reuses per-thread scratch memory: no allocation once warmed up.
void PreprocessImage(const SourceImage& src, const CropRect& crop, const Placement& place, const Affine& affine, const Output& out,
                     CpuKernels cap = CpuKernels::Avx512Vbmi);

// Whether the running CPU has AVX2 and FMA.
bool CpuHasAvx2();


uint16_t FloatToHalf(float value);

}  // namespace quiver
