// The fused CPU kernel. Resizing is separable: per output row, a vertical pass blends the source rows it
// needs (uint8 -> float, contiguous, vectorized), then a horizontal pass gathers the taps of each output
// pixel, normalizes and writes one plane per channel. Hot loops are compiled twice (x86-64-v3 with AVX2
// and FMA, and baseline x86-64) and the loader picks one for the running CPU. On AVX2 (and faster on
// AVX-512 VBMI), bilinear RGB(A) runs the other way round: each source row is resampled horizontally
// once, straight from its bytes into three planes (HorizontalBytesAvx2/Vbmi), and each output row is a
// two-row blend of those planes fused with the normalize (VerticalAffine). A downscale then blends
// fewer values, and no pixel is deinterleaved twice.
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

// Two-tap horizontal resampling straight from interleaved bytes, 8 outputs a block. One byte shuffle
// picks both taps of a channel for each output, tap 0 into byte 0 and tap 1 into byte 2 of its 32-bit
// lane (the other bytes zero), so `& 0xff` and `>> 16` give the two taps as integers; the picks of
// channel c are those of channel 0 plus c. AVX2 (lanes 2): each 128-bit lane has its own 32-byte
// window, read as a low and a high half with pshufb; a low pick is 0x70 + t for window offset t, so
// from t = 16 its top bit is set (pshufb gives 0) and the high pick, the same byte xor 0x80, reads the
// high half. AVX-512 VBMI (lanes 1): one 64-byte window and one vpermt2b per channel. A window never
// passes the row end (near it, it starts earlier). Bilinear taps (at most 2x shrink) always fit their
// windows; what is left for one output at a time is rows narrower than a window and the tail past the
// last block (the fit check stays as a guard).
struct ByteWindowTable {
  int lanes = 0;
  std::vector<int32_t> blocks;     // the blocks whose taps fit their windows
  std::vector<int32_t> base;       // per fitting block: `lanes` window offsets in the row
  std::vector<uint8_t> picks;      // per fitting block: 32-byte picks (AVX2: low half, then high half)
  std::vector<int32_t> leftovers;  // outputs done one at a time
};

// One resampled source row: three planes of the content width, tagged with the row they came from.
struct ResampledRow {
  int sourceRow = -1;
  std::vector<float> planes;
};

struct Scratch {
  AxisTable x, y;
  ByteWindowTable windows;
  ResampledRow resampled[2];  // the two source rows an output row blends, for the AVX2 path
  std::vector<float> row;     // vertically blended source row, crop width x channels
  std::vector<float> accum;   // one output row, for many-tap or float16 output
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

void BuildByteWindows(ByteWindowTable& table, const AxisTable& x, int rowBytes, int lanes) {
  const int n = x.size;
  const int blocks = n / 8;
  const int windowBytes = lanes == 2 ? 32 : 64;
  const int outputsPerWindow = 8 / lanes;
  const int pickBytes = lanes == 2 ? 64 : 32;
  table.lanes = lanes;
  table.blocks.clear();
  table.base.clear();
  table.picks.clear();
  table.leftovers.clear();
  uint8_t picks[64];
  for (int b = 0; b < blocks; b++) {
    bool fits = true;
    int32_t bases[2] = {0, 0};
    std::memset(picks, 0x80, sizeof picks);
    for (int lane = 0; lane < lanes && fits; lane++) {
      const int first = 8 * b + lane * outputsPerWindow;
      // Taps never decrease along the row, so the first is the leftmost; at the row end the window
      // moves left so that it stays inside the row.
      const int base = std::min(x.index[first], rowBytes - windowBytes);
      bases[lane] = base;
      fits = base >= 0;
      for (int j = 0; j < outputsPerWindow && fits; j++) {
        for (int k = 0; k < 2 && fits; k++) {
          const int t = x.index[static_cast<size_t>(k) * n + first + j] - base;
          fits = t >= 0 && t + 2 < windowBytes;
          const int at = 16 * lane + 4 * j + 2 * k;  // tap k of output j: byte 2k of its lane
          if (lanes == 2) {
            picks[at] = static_cast<uint8_t>(0x70 + t);
            picks[32 + at] = static_cast<uint8_t>((0x70 + t) ^ 0x80);
          } else {
            picks[at] = static_cast<uint8_t>(t);
          }
        }
      }
    }
    if (!fits) {
      for (int i = 8 * b; i < 8 * b + 8; i++) table.leftovers.push_back(i);
      continue;
    }
    table.blocks.push_back(b);
    table.base.insert(table.base.end(), bases, bases + lanes);
    table.picks.insert(table.picks.end(), picks, picks + pickBytes);
  }
  for (int i = 8 * blocks; i < n; i++) table.leftovers.push_back(i);
}

// What the vector passes read, unpacked once per image so that the loops hold plain pointers.
struct BytePass {
  const int32_t* blocks;
  const int32_t* base;
  const uint8_t* picks;
  size_t count;
  const float* w0;
  const float* w1;
  float* planes[3];
};

BytePass MakeBytePass(const ByteWindowTable& table, const AxisTable& x, float* const planes[3]) {
  return {table.blocks.data(), table.base.data(), table.picks.data(), table.blocks.size(),
          x.weight.data(), x.weight.data() + x.size, {planes[0], planes[1], planes[2]}};
}

#ifdef QUIVER_HAVE_AVX2_PATH
__attribute__((target("avx2,fma")))
inline __m256i LoadLanes(const uint8_t* left, const uint8_t* right) {
  return _mm256_inserti128_si256(_mm256_castsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(left))),
                                 _mm_loadu_si128(reinterpret_cast<const __m128i*>(right)), 1);
}

// taps holds tap 0 in the low byte and tap 1 in the third byte of each 32-bit lane: out = tap0 * u + tap1 * v.
__attribute__((target("avx2,fma")))
inline void StoreBlend(__m256i taps, __m256 u, __m256 v, float* out) {
  const __m256 tap0 = _mm256_cvtepi32_ps(_mm256_and_si256(taps, _mm256_set1_epi32(0xff)));
  const __m256 tap1 = _mm256_cvtepi32_ps(_mm256_srli_epi32(taps, 16));
  _mm256_storeu_ps(out, _mm256_fmadd_ps(tap1, v, _mm256_mul_ps(tap0, u)));
}

// planes[c][i] = row[i0 + c] * w0 + row[i1 + c] * w1 for the blocks whose windows fit (lanes 2).
__attribute__((target("avx2,fma")))
void HorizontalBytesAvx2(const uint8_t* __restrict row, BytePass pass) {
  for (size_t k = 0; k < pass.count; k++) {
    const int blk = pass.blocks[k];
    const uint8_t* left = row + pass.base[2 * k];
    const uint8_t* right = row + pass.base[2 * k + 1];
    const __m256i low = LoadLanes(left, right);
    const __m256i high = LoadLanes(left + 16, right + 16);
    const __m256i pickLow = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pass.picks + 64 * k));
    const __m256i pickHigh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pass.picks + 64 * k + 32));
    const __m256 u = _mm256_loadu_ps(pass.w0 + 8 * blk);
    const __m256 v = _mm256_loadu_ps(pass.w1 + 8 * blk);
    float* const outs[3] = {pass.planes[0] + 8 * blk, pass.planes[1] + 8 * blk, pass.planes[2] + 8 * blk};
    for (int c = 0; c < 3; c++) {
      const __m256i add = _mm256_set1_epi8(static_cast<char>(c));
      const __m256i taps = _mm256_or_si256(_mm256_shuffle_epi8(low, _mm256_add_epi8(pickLow, add)), _mm256_shuffle_epi8(high, _mm256_add_epi8(pickHigh, add)));
      StoreBlend(taps, u, v, outs[c]);
    }
  }
}

// The same with AVX-512 VBMI (lanes 1): a 64-byte window and one byte permute per channel.
__attribute__((target("avx512vbmi,avx512vl,avx512bw,avx512f,avx2,fma")))
void HorizontalBytesVbmi(const uint8_t* __restrict row, BytePass pass) {
  const __mmask32 tapBytes = 0x55555555u;  // bytes 0 and 2 of each 32-bit lane
  for (size_t k = 0; k < pass.count; k++) {
    const int blk = pass.blocks[k];
    const uint8_t* window = row + pass.base[k];
    const __m256i low = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(window));
    const __m256i high = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(window + 32));
    const __m256i pick = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pass.picks + 32 * k));
    const __m256 u = _mm256_loadu_ps(pass.w0 + 8 * blk);
    const __m256 v = _mm256_loadu_ps(pass.w1 + 8 * blk);
    float* const outs[3] = {pass.planes[0] + 8 * blk, pass.planes[1] + 8 * blk, pass.planes[2] + 8 * blk};
    for (int c = 0; c < 3; c++) {
      const __m256i taps = _mm256_maskz_permutex2var_epi8(tapBytes, low, _mm256_add_epi8(pick, _mm256_set1_epi8(static_cast<char>(c))), high);
      StoreBlend(taps, u, v, outs[c]);
    }
  }
}
#endif

// The outputs the vector passes leave: blocks whose taps spread too far, and the tail past the last block.
void HorizontalBytesLeftovers(const uint8_t* row, const ByteWindowTable& table, const AxisTable& x, float* const planes[3]) {
  const int n = x.size;
  const float* w0 = x.weight.data();
  const float* w1 = x.weight.data() + n;
  for (const int32_t i : table.leftovers) {
    const uint8_t* p = row + x.index[i];
    const uint8_t* q = row + x.index[static_cast<size_t>(n) + i];
    for (int c = 0; c < 3; c++) planes[c][i] = static_cast<float>(p[c]) * w0[i] + static_cast<float>(q[c]) * w1[i];
  }
}

// out = h0 * w0a + h1 * w1a + b: the vertical blend of two resampled rows and the normalize in one pass.
QUIVER_MULTIVERSION
void VerticalAffine(const float* __restrict h0, const float* __restrict h1, float w0a, float w1a, float b, float* __restrict out, int n) {
  for (int x = 0; x < n; x++) out[x] = h0[x] * w0a + (h1[x] * w1a + b);
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

namespace {
CpuKernels BestCpuKernels() {
  CpuKernels best = CpuKernels::Baseline;
#if defined(__x86_64__) && defined(__GNUC__)
  if (CpuHasAvx2()) best = CpuKernels::Avx2;
  if (best == CpuKernels::Avx2 && __builtin_cpu_supports("avx512vbmi") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512f")) {
    best = CpuKernels::Avx512Vbmi;
  }
#endif
  return best;
}
}  // namespace

CpuKernels ActiveCpuKernels(CpuKernels cap) {
  static const CpuKernels best = BestCpuKernels();  // once: __builtin_cpu_init is not for every call
  return static_cast<int>(cap) < static_cast<int>(best) ? cap : best;
}

const char* CpuKernelsName(CpuKernels kernels) {
  switch (kernels) {
    case CpuKernels::Avx512Vbmi: return "avx512vbmi";
    case CpuKernels::Avx2: return "avx2";
    default: return "baseline";
  }
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

void PreprocessImage(const SourceImage& src, const CropRect& crop, const Placement& p, const Affine& affine, const Output& out, CpuKernels cap) {
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
  // Horizontal first, from bytes, once per source row; then blend rows: RGB/RGBA, bilinear.
  const CpuKernels kernels = ActiveCpuKernels(cap);
  if (kernels != CpuKernels::Baseline && xtaps == 2 && ytaps == 2 && channels >= 3) {
    const bool vbmi = kernels == CpuKernels::Avx512Vbmi;
    BuildByteWindows(s.windows, s.x, rowLength, vbmi ? 1 : 2);
    for (ResampledRow& r : s.resampled) {
      r.sourceRow = -1;
      if (r.planes.size() < 3 * static_cast<size_t>(dw)) r.planes.resize(3 * static_cast<size_t>(dw));
    }
    // The row's planes, resampling it into the slot that does not hold `keep` if it is not there yet.
    auto resampled = [&](int sourceRow, int keep) -> const float* {
      for (ResampledRow& r : s.resampled) {
        if (r.sourceRow == sourceRow) return r.planes.data();
      }
      ResampledRow& slot = s.resampled[0].sourceRow == keep ? s.resampled[1] : s.resampled[0];
      float* const planes[3] = {slot.planes.data(), slot.planes.data() + dw, slot.planes.data() + 2 * static_cast<size_t>(dw)};
      const uint8_t* line = origin + static_cast<size_t>(sourceRow) * stride;
      const BytePass pass = MakeBytePass(s.windows, s.x, planes);
      if (vbmi) HorizontalBytesVbmi(line, pass);
      else HorizontalBytesAvx2(line, pass);
      HorizontalBytesLeftovers(line, s.windows, s.x, planes);
      slot.sourceRow = sourceRow;
      return slot.planes.data();
    };
    const int ch = p.contentHeight;
    for (int y = 0; y < ch; y++) {
      const int r0 = s.y.index[y];
      const int r1 = s.y.index[static_cast<size_t>(ch) + y];
      const float w0 = s.y.weight[y];
      const float w1 = s.y.weight[static_cast<size_t>(ch) + y];
      const float* h0 = resampled(r0, r1);
      const float* h1 = w1 == 0.0f ? h0 : resampled(r1, r0);
      const size_t lineOffset = static_cast<size_t>(y + p.padTop) * p.tensorWidth + p.padLeft;
      for (int c = 0; c < 3; c++) {
        // Output plane c reads source channel 2 - c for BGR.
        const size_t from = static_cast<size_t>(affine.bgr ? 2 - c : c) * dw;
        // float16 goes through one float row, then the same rounding as the other paths.
        float* line = outF32 ? outF32 + c * plane + lineOffset : accum;
        VerticalAffine(h0 + from, h1 + from, w0 * affine.a[c], w1 == 0.0f ? 0.0f : w1 * affine.a[c], affine.b[c], line, dw);
        if (!outF32) HalfRow(accum, outF16 + c * plane + lineOffset, dw);
      }
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
