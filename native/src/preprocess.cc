// The fused CPU kernel. Resizing is separable: per output row, a vertical pass blends the source rows it
// needs (uint8 -> float, contiguous, vectorized), then a horizontal pass gathers the taps of each output
// pixel, normalizes and writes one plane per channel. Hot loops are compiled twice (x86-64-v3 with AVX2
// and FMA, and baseline x86-64) and the loader picks one for the running CPU. On AVX2, bilinear RGB(A)
// goes through planar rows and a permute-window horizontal pass instead (see HorizontalWindowed).
#include "preprocess.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define QUIVER_HAVE_AVX2_PATH 1
#endif

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define QUIVER_MULTIVERSION __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define QUIVER_MULTIVERSION
#endif

namespace quiver {
namespace {

// Taps of one axis: output i reads source positions index[k * size + i] with weight[k * size + i].
struct AxisTable {
  int taps = 0;
  int size = 0;
  std::vector<int32_t> index;
  std::vector<float> weight;
};

// Two-tap horizontal resampling, 8 outputs at a time: each block reads a 16-pixel window of a planar
// row from `base` and picks its taps with permutes (offsets 0..15 in perm0/perm1). base -1: the block's
// taps do not fit one window (or it would read past the row), so it is done one pixel at a time.
struct WindowTable {
  std::vector<int32_t> base;
  std::vector<int32_t> perm0, perm1;
};

struct Scratch {
  AxisTable x, y;
  WindowTable window;
  std::vector<float> row;    // vertically blended source row, crop width x channels
  std::vector<float> planes; // the same row as three planes (crop width each), for the windowed path
  std::vector<float> accum;  // one output row, for many-tap or float16 output
};

thread_local Scratch scratch;

// Bilinear with half-pixel centres (OpenCV INTER_LINEAR) up to 2x shrink; area averaging beyond.
void BuildAxis(AxisTable& table, int srcSize, int dstSize, int stride) {
  const double scale = static_cast<double>(srcSize) / dstSize;
  const bool area = scale > 2.0;
  const int taps = area ? static_cast<int>(std::ceil(scale)) + 1 : 2;
  table.taps = taps;
  table.size = dstSize;
  table.index.assign(static_cast<size_t>(taps) * dstSize, 0);
  table.weight.assign(static_cast<size_t>(taps) * dstSize, 0.0f);
  for (int i = 0; i < dstSize; i++) {
    if (area) {
      const double begin = i * scale;
      const double end = std::min<double>((i + 1) * scale, srcSize);
      int first = static_cast<int>(std::floor(begin));
      int k = 0;
      for (int j = first; j < end && k < taps; j++, k++) {
        const double overlap = std::min<double>(end, j + 1) - std::max<double>(begin, j);
        table.index[static_cast<size_t>(k) * dstSize + i] = j * stride;
        table.weight[static_cast<size_t>(k) * dstSize + i] = static_cast<float>(overlap / scale);
      }
      for (; k < taps; k++) table.index[static_cast<size_t>(k) * dstSize + i] = first * stride;
    } else {
      double s = (i + 0.5) * scale - 0.5;
      if (s < 0) s = 0;
      int x0 = static_cast<int>(std::floor(s));
      double f = s - x0;
      if (x0 >= srcSize - 1) {
        x0 = srcSize - 1;
        f = 0;
      }
      const int x1 = std::min(x0 + 1, srcSize - 1);
      table.index[i] = x0 * stride;
      table.index[static_cast<size_t>(dstSize) + i] = x1 * stride;
      table.weight[i] = static_cast<float>(1.0 - f);
      table.weight[static_cast<size_t>(dstSize) + i] = static_cast<float>(f);
    }
  }
}

QUIVER_MULTIVERSION
void BlendRows2(const uint8_t* __restrict r0, const uint8_t* __restrict r1, float w0, float w1, float* __restrict out, int n) {
  for (int i = 0; i < n; i++) out[i] = static_cast<float>(r0[i]) * w0 + static_cast<float>(r1[i]) * w1;
}

QUIVER_MULTIVERSION
void ConvertRow(const uint8_t* __restrict r, float* __restrict out, int n) {
  for (int i = 0; i < n; i++) out[i] = static_cast<float>(r[i]);
}

QUIVER_MULTIVERSION
void AccumulateRow(const uint8_t* __restrict r, float w, float* __restrict out, int n) {
  for (int i = 0; i < n; i++) out[i] += static_cast<float>(r[i]) * w;
}

QUIVER_MULTIVERSION
void ScaleRow(const uint8_t* __restrict r, float w, float* __restrict out, int n) {
  for (int i = 0; i < n; i++) out[i] = static_cast<float>(r[i]) * w;
}

// Two taps, all three channels of a pixel at once: the taps' indices and weights are read once.
QUIVER_MULTIVERSION
void Horizontal2Rgb(const float* __restrict row, const int32_t* __restrict i0, const int32_t* __restrict i1,
                    const float* __restrict w0, const float* __restrict w1, const int* channel, const float* a, const float* b,
                    float* __restrict o0, float* __restrict o1, float* __restrict o2, int n) {
  const int c0 = channel[0], c1 = channel[1], c2 = channel[2];
  const float a0 = a[0], a1 = a[1], a2 = a[2], b0 = b[0], b1 = b[1], b2 = b[2];
  for (int x = 0; x < n; x++) {
    const float* p = row + i0[x];
    const float* q = row + i1[x];
    const float u = w0[x], v = w1[x];
    o0[x] = (p[c0] * u + q[c0] * v) * a0 + b0;
    o1[x] = (p[c1] * u + q[c1] * v) * a1 + b1;
    o2[x] = (p[c2] * u + q[c2] * v) * a2 + b2;
  }
}

// Vertical blend of two source rows straight into planes, channel by channel.
template <int Channels>
QUIVER_MULTIVERSION
void BlendRowsPlanar(const uint8_t* __restrict r0, const uint8_t* __restrict r1, float w0, float w1,
                     float* __restrict p0, float* __restrict p1, float* __restrict p2, int width) {
  for (int i = 0; i < width; i++) {
    p0[i] = static_cast<float>(r0[i * Channels]) * w0 + static_cast<float>(r1[i * Channels]) * w1;
    p1[i] = static_cast<float>(r0[i * Channels + 1]) * w0 + static_cast<float>(r1[i * Channels + 1]) * w1;
    p2[i] = static_cast<float>(r0[i * Channels + 2]) * w0 + static_cast<float>(r1[i * Channels + 2]) * w1;
  }
}

void BuildWindows(WindowTable& table, const AxisTable& x, int channels, int srcWidth) {
  const int n = x.size;
  const int blocks = n / 8;
  table.base.assign(blocks, -1);
  table.perm0.assign(static_cast<size_t>(blocks) * 8, 0);
  table.perm1.assign(static_cast<size_t>(blocks) * 8, 0);
  for (int b = 0; b < blocks; b++) {
    int lo = x.index[8 * b] / channels;
    bool fits = lo + 16 <= srcWidth;
    for (int j = 0; j < 8 && fits; j++) {
      const int i0 = x.index[8 * b + j] / channels - lo;
      const int i1 = x.index[static_cast<size_t>(n) + 8 * b + j] / channels - lo;
      fits = i0 >= 0 && i0 < 16 && i1 >= 0 && i1 < 16;
      table.perm0[8 * b + j] = i0;
      table.perm1[8 * b + j] = i1;
    }
    if (fits) table.base[b] = lo;
  }
}

#ifdef QUIVER_HAVE_AVX2_PATH
__attribute__((target("avx2,fma")))
inline __m256 PickFromWindow(__m256 lo, __m256 hi, __m256i perm) {
  // permutevar8x32 uses the low 3 bits; bit 3 (moved to the sign bit) chooses the upper half.
  const __m256 fromLo = _mm256_permutevar8x32_ps(lo, perm);
  const __m256 fromHi = _mm256_permutevar8x32_ps(hi, perm);
  return _mm256_blendv_ps(fromLo, fromHi, _mm256_castsi256_ps(_mm256_slli_epi32(perm, 28)));
}

// One output row of all three planes: out_c = (src_c[i0] * w0 + src_c[i1] * w1) * a_c + b_c.
__attribute__((target("avx2,fma")))
void HorizontalWindowed(const float* const planes[3], const WindowTable& table, const AxisTable& x, const float* a, const float* b,
                        float* const out[3]) {
  const int n = x.size;
  const int blocks = n / 8;
  const float* w0 = x.weight.data();
  const float* w1 = x.weight.data() + n;
  for (int blk = 0; blk < blocks; blk++) {
    const int base = table.base[blk];
    const int x0 = 8 * blk;
    if (base < 0) continue;
    const __m256i perm0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table.perm0.data() + x0));
    const __m256i perm1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(table.perm1.data() + x0));
    const __m256 u = _mm256_loadu_ps(w0 + x0);
    const __m256 v = _mm256_loadu_ps(w1 + x0);
    for (int c = 0; c < 3; c++) {
      const __m256 lo = _mm256_loadu_ps(planes[c] + base);
      const __m256 hi = _mm256_loadu_ps(planes[c] + base + 8);
      const __m256 blended = _mm256_fmadd_ps(PickFromWindow(lo, hi, perm1), v, _mm256_mul_ps(PickFromWindow(lo, hi, perm0), u));
      _mm256_storeu_ps(out[c] + x0, _mm256_fmadd_ps(blended, _mm256_set1_ps(a[c]), _mm256_set1_ps(b[c])));
    }
  }
}
#endif

// The pixels the windowed pass leaves: blocks whose taps spread too far, and the tail past the last block.
void HorizontalLeftovers(const float* const planes[3], const WindowTable& table, const AxisTable& x, int channels, const float* a,
                         const float* b, float* const out[3]) {
  const int n = x.size;
  const float* w0 = x.weight.data();
  const float* w1 = x.weight.data() + n;
  auto one = [&](int i) {
    const int i0 = x.index[i] / channels;
    const int i1 = x.index[static_cast<size_t>(n) + i] / channels;
    for (int c = 0; c < 3; c++) out[c][i] = (planes[c][i0] * w0[i] + planes[c][i1] * w1[i]) * a[c] + b[c];
  };
  const int blocks = n / 8;
  for (int blk = 0; blk < blocks; blk++) {
    if (table.base[blk] < 0) {
      for (int i = 8 * blk; i < 8 * blk + 8; i++) one(i);
    }
  }
  for (int i = 8 * blocks; i < n; i++) one(i);
}

QUIVER_MULTIVERSION
void HorizontalTap(const float* __restrict row, const int32_t* __restrict index, const float* __restrict weight,
                   int channel, float* __restrict accum, int n, bool first) {
  const float* src = row + channel;
  if (first) {
    for (int x = 0; x < n; x++) accum[x] = src[index[x]] * weight[x];
  } else {
    for (int x = 0; x < n; x++) accum[x] += src[index[x]] * weight[x];
  }
}

QUIVER_MULTIVERSION
void AffineRow(const float* __restrict in, float a, float b, float* __restrict out, int n) {
  for (int x = 0; x < n; x++) out[x] = in[x] * a + b;
}

QUIVER_MULTIVERSION
void AffineInPlace(float* __restrict row, float a, float b, int n) {
  for (int x = 0; x < n; x++) row[x] = row[x] * a + b;
}

QUIVER_MULTIVERSION
void HalfRow(const float* __restrict in, uint16_t* __restrict out, int n) {
  for (int x = 0; x < n; x++) out[x] = FloatToHalf(in[x]);
}

template <typename T>
void FillValue(T* out, size_t n, T value) {
  std::fill(out, out + n, value);
}

// Writes the padding around the content in one plane.
template <typename T>
void FillPadding(T* plane, const Placement& p, T value) {
  const size_t tw = p.tensorWidth;
  for (int y = 0; y < p.padTop; y++) FillValue(plane + y * tw, tw, value);
  for (int y = p.padTop + p.contentHeight; y < p.tensorHeight; y++) FillValue(plane + y * tw, tw, value);
  const int right = p.padLeft + p.contentWidth;
  for (int y = p.padTop; y < p.padTop + p.contentHeight; y++) {
    T* line = plane + y * tw;
    FillValue(line, static_cast<size_t>(p.padLeft), value);
    FillValue(line + right, static_cast<size_t>(p.tensorWidth - right), value);
  }
}

}  // namespace

uint16_t FloatToHalf(float value) {
  uint32_t bits;
  std::memcpy(&bits, &value, sizeof bits);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude >= 0x7f800000u) {  // inf or NaN
    return static_cast<uint16_t>(sign | 0x7c00u | (magnitude > 0x7f800000u ? 0x200u : 0u));
  }
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);  // overflows to inf
  if (magnitude < 0x38800000u) {  // subnormal half or zero
    if (magnitude < 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;
    const int shift = 113 - static_cast<int>(magnitude >> 23) + 13;
    uint32_t half = mantissa >> shift;
    const uint32_t rest = mantissa & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (rest > halfway || (rest == halfway && (half & 1u))) half++;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t half = ((magnitude - 0x38000000u) >> 13);
  const uint32_t rest = magnitude & 0x1fffu;
  if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) half++;  // round to nearest even
  return static_cast<uint16_t>(sign | half);
}

bool CpuHasAvx2() {
#if defined(__x86_64__) && defined(__GNUC__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

void ValidateArguments(const SourceImage& src, const CropRect& crop, const Placement& p, const Output& out) {
  auto fail = [](const std::string& message) { throw KernelError("ERR_QUIVER_NATIVE_ARGUMENT", message); };
  if (src.channels != 1 && src.channels != 3 && src.channels != 4) fail("channels must be 1, 3 or 4");
  if (src.width < 1 || src.height < 1 || src.width > kMaxSide || src.height > kMaxSide) fail("source size is out of range");
  if (src.byteLength < static_cast<size_t>(src.width) * src.height * src.channels) fail("source buffer is smaller than width x height x channels");
  if (crop.x < 0 || crop.y < 0 || crop.width < 1 || crop.height < 1 || crop.x + crop.width > src.width || crop.y + crop.height > src.height) {
    fail("crop rectangle is not inside the source");
  }
  if (p.tensorWidth < 1 || p.tensorHeight < 1 || p.tensorWidth > kMaxSide || p.tensorHeight > kMaxSide) fail("tensor size is out of range");
  if (p.contentWidth < 1 || p.contentHeight < 1 || p.padLeft < 0 || p.padTop < 0 ||
      p.padLeft + p.contentWidth > p.tensorWidth || p.padTop + p.contentHeight > p.tensorHeight) {
    fail("content does not fit inside the tensor");
  }
  const size_t needed = 3 * static_cast<size_t>(p.tensorWidth) * p.tensorHeight;
  if (out.offset > out.elementCount || out.elementCount - out.offset < needed) fail("output buffer is too small for this image at this offset");
}

void PreprocessImage(const SourceImage& src, const CropRect& crop, const Placement& p, const Affine& affine, const Output& out) {
  ValidateArguments(src, crop, p, out);
  Scratch& s = scratch;
  const int channels = src.channels;
  const int rowLength = crop.width * channels;
  BuildAxis(s.x, crop.width, p.contentWidth, channels);
  BuildAxis(s.y, crop.height, p.contentHeight, 1);
  if (s.row.size() < static_cast<size_t>(rowLength)) s.row.resize(rowLength);
  if (s.accum.size() < static_cast<size_t>(p.contentWidth)) s.accum.resize(p.contentWidth);

  const size_t plane = static_cast<size_t>(p.tensorWidth) * p.tensorHeight;
  const bool padded = p.contentWidth != p.tensorWidth || p.contentHeight != p.tensorHeight;
  float* outF32 = out.type == OutputType::Float32 ? static_cast<float*>(out.data) + out.offset : nullptr;
  uint16_t* outF16 = out.type == OutputType::Float16 ? static_cast<uint16_t*>(out.data) + out.offset : nullptr;
  if (padded) {
    for (int c = 0; c < 3; c++) {
      if (outF32) FillPadding(outF32 + c * plane, p, affine.pad[c]);
      else FillPadding(outF16 + c * plane, p, FloatToHalf(affine.pad[c]));
    }
  }

  const size_t stride = static_cast<size_t>(src.width) * channels;
  const uint8_t* origin = src.data + static_cast<size_t>(crop.y) * stride + static_cast<size_t>(crop.x) * channels;
  const int dw = p.contentWidth;
  const int ytaps = s.y.taps;
  const int xtaps = s.x.taps;
  float* row = s.row.data();
  float* accum = s.accum.data();

#ifdef QUIVER_HAVE_AVX2_PATH
  // Planar rows and windowed permutes: the common case (RGB/RGBA, bilinear both ways, float32) on AVX2.
  static const bool avx2 = CpuHasAvx2();
  if (avx2 && xtaps == 2 && ytaps == 2 && channels >= 3 && outF32) {
    BuildWindows(s.window, s.x, channels, crop.width);
    const size_t width = static_cast<size_t>(crop.width);
    if (s.planes.size() < 3 * width) s.planes.resize(3 * width);
    const float* planes[3] = {s.planes.data(), s.planes.data() + width, s.planes.data() + 2 * width};
    float* sourcePlanes[3] = {s.planes.data(), s.planes.data() + width, s.planes.data() + 2 * width};
    // Output plane c reads source channel channel[c].
    const float* ordered[3];
    for (int c = 0; c < 3; c++) ordered[c] = planes[affine.bgr ? 2 - c : c];
    for (int y = 0; y < p.contentHeight; y++) {
      const uint8_t* r0 = origin + s.y.index[y] * stride;
      const uint8_t* r1 = origin + s.y.index[static_cast<size_t>(p.contentHeight) + y] * stride;
      const float w0 = s.y.weight[y];
      const float w1 = s.y.weight[static_cast<size_t>(p.contentHeight) + y];
      if (channels == 3) BlendRowsPlanar<3>(r0, r1, w0, w1, sourcePlanes[0], sourcePlanes[1], sourcePlanes[2], crop.width);
      else BlendRowsPlanar<4>(r0, r1, w0, w1, sourcePlanes[0], sourcePlanes[1], sourcePlanes[2], crop.width);
      const size_t lineOffset = static_cast<size_t>(y + p.padTop) * p.tensorWidth + p.padLeft;
      float* const outRows[3] = {outF32 + lineOffset, outF32 + plane + lineOffset, outF32 + 2 * plane + lineOffset};
      HorizontalWindowed(ordered, s.window, s.x, affine.a, affine.b, outRows);
      HorizontalLeftovers(ordered, s.window, s.x, channels, affine.a, affine.b, outRows);
    }
    return;
  }
#endif

  for (int y = 0; y < p.contentHeight; y++) {
    // Vertical pass over the whole crop row.
    const int32_t r0 = s.y.index[y];
    const float w0 = s.y.weight[y];
    if (ytaps == 2) {
      const float w1 = s.y.weight[static_cast<size_t>(p.contentHeight) + y];
      if (w1 == 0.0f) ConvertRow(origin + r0 * stride, row, rowLength);
      else BlendRows2(origin + r0 * stride, origin + s.y.index[static_cast<size_t>(p.contentHeight) + y] * stride, w0, w1, row, rowLength);
    } else {
      ScaleRow(origin + r0 * stride, w0, row, rowLength);
      for (int k = 1; k < ytaps; k++) {
        const float w = s.y.weight[static_cast<size_t>(k) * p.contentHeight + y];
        if (w != 0.0f) AccumulateRow(origin + s.y.index[static_cast<size_t>(k) * p.contentHeight + y] * stride, w, row, rowLength);
      }
    }
    // Horizontal pass, one output plane at a time.
    const size_t lineOffset = static_cast<size_t>(y + p.padTop) * p.tensorWidth + p.padLeft;
    if (xtaps == 2 && outF32) {
      int channel[3];
      for (int c = 0; c < 3; c++) channel[c] = channels == 1 ? 0 : (affine.bgr ? 2 - c : c);
      Horizontal2Rgb(row, s.x.index.data(), s.x.index.data() + dw, s.x.weight.data(), s.x.weight.data() + dw, channel, affine.a, affine.b,
                     outF32 + lineOffset, outF32 + plane + lineOffset, outF32 + 2 * plane + lineOffset, dw);
      continue;
    }
    for (int c = 0; c < 3; c++) {
      const int channel = channels == 1 ? 0 : (affine.bgr ? 2 - c : c);
      const float a = affine.a[c];
      const float b = affine.b[c];
      for (int k = 0; k < xtaps; k++) {
        HorizontalTap(row, s.x.index.data() + static_cast<size_t>(k) * dw, s.x.weight.data() + static_cast<size_t>(k) * dw, channel, accum, dw, k == 0);
      }
      if (outF32) {
        AffineRow(accum, a, b, outF32 + c * plane + lineOffset, dw);
      } else {
        AffineInPlace(accum, a, b, dw);
        HalfRow(accum, outF16 + c * plane + lineOffset, dw);
      }
    }
  }
}

}  // namespace quiver
