// JPEG decoding with libjpeg-turbo, scaled by 1/2, 1/4 or 1/8 in the IDCT when asked (most of the work of
// a big photo is then skipped). Pure C++: no Node here. Built only where libjpeg's headers were found.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace quiver {

struct DecodedImage {
  std::vector<uint8_t> pixels;  // HWC, 8 bits
  int width = 0;
  int height = 0;
  int channels = 0;  // 1 (grey) or 3 (RGB)
};

// Decodes `data` at 1/scaleDenom of its size (1, 2, 4 or 8). Throws KernelError with code
// ERR_QUIVER_JPEG_INVALID for data that is not a complete, valid JPEG (warnings such as a premature
// end count as invalid), and ERR_QUIVER_JPEG_UNSUPPORTED for CMYK/YCCK or over `maxPixels`.
DecodedImage DecodeJpeg(const uint8_t* data, size_t length, int scaleDenom, double maxPixels);

}  // namespace quiver
