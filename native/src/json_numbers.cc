#include "json_numbers.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

namespace quiver {
namespace {

constexpr int kOpen = '[', kClose = ']', kComma = ',', kMinus = '-', kPlus = '+', kDot = '.', kZero = '0', kNine = '9';

inline bool IsSpace(int c) { return c == 0x20 || c == 0x0a || c == 0x0d || c == 0x09; }
inline bool IsDigit(int c) { return c >= kZero && c <= kNine; }

// Powers of ten a double holds exactly: a mantissa under 2^53 times or over one is rounded once,
// correctly (Clinger's fast path).
constexpr double kPow10[23] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                               1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// The float32 `approx` (within a few double ulps of the exact value) rounds to, or NaN when the exact
// value might round to another one: see float32Of in json-numbers.ts.
double Float32Of(double approx) {
  if (!(std::fabs(approx) < 3.5e38)) return kNaN;  // a cast further out is undefined
  const double f = static_cast<double>(static_cast<float>(approx));
  const double magnitude = std::fabs(f);
  if (!(magnitude >= 0x1p-126 && magnitude <= 3.4028234663852886e38)) return kNaN;
  return std::fabs(approx - f) <= magnitude * 0x1p-26 ? f : kNaN;
}

// A number's digits so far: the first 15 as an integer (a double sums them exactly too, every partial
// sum being under 2^53), any after in doubles, digit by digit, as json-numbers.ts sums them: the same
// roundings, so the same value.
struct Digits {
  uint64_t exact = 0;
  double summed = 0;
  int64_t count = 0;

  double value() const { return count <= 15 ? static_cast<double>(exact) : summed; }
};

// Reads the digits from `at` on into `d`, leaving `at` past them; says how many there were.
inline int64_t ReadDigits(const uint8_t* b, size_t length, size_t& at, Digits& d) {
  const int64_t before = d.count;
  while (d.count < 15 && at < length && IsDigit(b[at])) {
    d.exact = d.exact * 10 + static_cast<uint64_t>(b[at] - kZero);
    d.count++;
    at++;
  }
  while (at < length && IsDigit(b[at])) {
    if (d.count == 15) d.summed = static_cast<double>(d.exact);
    d.summed = d.summed * 10 + (b[at] - kZero);
    d.count++;
    at++;
  }
  return d.count - before;
}

// -value when negative, without a branch on the sign (random in a tensor, so mispredicted half the time).
inline double WithSign(double value, bool negative) {
  uint64_t bits;
  std::memcpy(&bits, &value, 8);
  bits ^= static_cast<uint64_t>(negative) << 63;
  std::memcpy(&value, &bits, 8);
  return value;
}

}  // namespace

// The target has no fused multiply-add unless asked (-march is not set), so `mantissa * 10 + digit`
// rounds twice, as it does in JavaScript.
NumberArrayScan ScanNumberArray(const uint8_t* b, size_t length, size_t at, bool float32, int maxRank) {
  NumberArrayScan out;
  if (maxRank < 1 || at >= length || b[at] != kOpen) return out;
  auto byte = [b, length](size_t i) -> int { return i < length ? b[i] : -1; };
  bool slow = false;
  std::vector<double> values;
  // About one number per 8 bytes, and not more than 32 MiB ahead of any number found.
  values.reserve(std::min<size_t>((length - at) / 8 + 16, size_t{1} << 22));
  std::vector<int64_t> dims(maxRank, -1);  // each level's length, from its first array closed
  std::vector<int64_t> seen(maxRank, 0);   // elements so far in the open array of each level
  int depth = 0;
  int leafDepth = 0;
  int c = byte(at);
  for (;;) {
    if (c == kOpen) {
      if (depth == maxRank || (leafDepth > 0 && depth >= leafDepth)) return out;
      seen[depth++] = 0;
      c = byte(++at);
      while (IsSpace(c)) c = byte(++at);
      if (c == kClose) {
        // [] alone is an empty tensor; an empty inner array is left to JSON.parse.
        if (depth != 1) return out;
        out.ok = true;
        out.dims = {0};
        out.end = at + 1;
        return out;
      }
      continue;
    }
    if (leafDepth == 0) {
      leafDepth = depth;
    } else if (depth != leafDepth) {
      return out;
    }
    const bool negative = c == kMinus;
    at += negative;
    // The first 15 digits are summed as an integer (a chain of double operations is slower).
    const size_t mantissaStart = at;
    Digits mantissa;
    const int64_t digits = ReadDigits(b, length, at, mantissa);
    // JSON: at least one digit, and no leading zero.
    if (digits == 0 || (digits > 1 && b[mantissaStart] == kZero)) return out;
    c = byte(at);
    int64_t decimals = 0;
    if (c == kDot) {
      ++at;
      decimals = ReadDigits(b, length, at, mantissa);
      if (decimals == 0) return out;
      c = byte(at);
    }
    int64_t exponent = 0;
    if (c == 'e' || c == 'E') {
      c = byte(++at);
      bool negativeExponent = false;
      if (c == kPlus || c == kMinus) {
        negativeExponent = c == kMinus;
        c = byte(++at);
      }
      const size_t first = at;
      while (IsDigit(c)) {
        if (exponent < 1000) exponent = exponent * 10 + (c - kZero);
        c = byte(++at);
      }
      if (at == first) return out;
      if (negativeExponent) exponent = -exponent;
    }
    if (!slow) {
      const int64_t power = exponent - decimals;
      if (power >= -22 && power <= 22 && digits + decimals <= 15) {
        // Never NaN: no test waits on the division, so divisions of successive numbers overlap.
        const double exact = static_cast<double>(mantissa.exact);
        values.push_back(WithSign(power >= 0 ? exact * kPow10[power] : exact / kPow10[-power], negative));
      } else {
        double value = kNaN;
        if (power >= -22 && power <= 22 && float32 && digits + decimals <= 40) {
          const double summed = mantissa.value();
          value = Float32Of(power >= 0 ? summed * kPow10[power] : summed / kPow10[-power]);
        }
        if (value == value) {
          values.push_back(WithSign(value, negative));
        } else {
          slow = true;
        }
      }
    }
    // After an element (a number, or an array just closed): a comma, or the end of its array.
    for (;;) {
      while (IsSpace(c)) c = byte(++at);
      seen[depth - 1]++;
      if (c == kComma) {
        c = byte(++at);
        while (IsSpace(c)) c = byte(++at);
        break;
      }
      if (c != kClose) return out;
      const int level = depth - 1;
      if (dims[level] == -1) {
        dims[level] = seen[level];
      } else if (dims[level] != seen[level]) {
        return out;
      }
      depth--;
      c = byte(++at);
      if (depth == 0) {
        out.ok = true;
        out.exact = !slow;
        out.dims.assign(dims.begin(), dims.begin() + leafDepth);
        out.end = at;
        if (!slow) out.values = std::move(values);
        return out;
      }
    }
  }
}

}  // namespace quiver
