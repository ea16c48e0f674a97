// Reads a JSON array of numbers (flat or nested, rectangular) from UTF-8 bytes into doubles, as
// src/oip/json-numbers.ts's scanArray does, value for value (the same double arithmetic, in the same
// order). Pure C++: no Node here.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace quiver {

struct NumberArrayScan {
  // A rectangular array of JSON numbers, nested at most maxRank deep.
  bool ok = false;
  // Every value was read; false when one was off the fast path (the caller reads them with JSON.parse).
  bool exact = true;
  std::vector<double> values;
  std::vector<int64_t> dims;
  // One past the closing ']'.
  size_t end = 0;
};

// Scans the array whose '[' is at `at`. `float32`: long mantissas (up to 40 digits) may be read as the
// float32 they round to, where that rounding is certain.
NumberArrayScan ScanNumberArray(const uint8_t* bytes, size_t length, size_t at, bool float32, int maxRank);

}  // namespace quiver
