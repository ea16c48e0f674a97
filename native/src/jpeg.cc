// libjpeg reports errors through error_exit, which must not return: it longjmps back to the one frame
// that called setjmp, which holds no object with a destructor; the message is copied out first.
#include "jpeg.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>

#include <jpeglib.h>

#include "preprocess.h"

namespace quiver {
namespace {

struct ErrorManager {
  jpeg_error_mgr base;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void ErrorExit(j_common_ptr info) {
  auto* err = reinterpret_cast<ErrorManager*>(info->err);
  (*info->err->format_message)(info, err->message);
  longjmp(err->jump, 1);
}

// Warnings (corrupt data, premature end) are counted by libjpeg; nothing is printed.
void OutputMessage(j_common_ptr) {}

enum class Outcome { kOk, kInvalid, kUnsupported, kTooLarge };

// Every libjpeg call is in here: on error_exit control comes back to setjmp with only PODs in scope.
Outcome DecodeInto(const uint8_t* data, size_t length, int scaleDenom, double maxPixels, DecodedImage* out, char* message) {
  jpeg_decompress_struct cinfo;
  ErrorManager err;
  cinfo.err = jpeg_std_error(&err.base);
  err.base.error_exit = ErrorExit;
  err.base.output_message = OutputMessage;
  err.message[0] = '\0';
  if (setjmp(err.jump)) {
    std::strncpy(message, err.message, JMSG_LENGTH_MAX);
    jpeg_destroy_decompress(&cinfo);
    return Outcome::kInvalid;
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(length));
  jpeg_read_header(&cinfo, TRUE);
  if (static_cast<double>(cinfo.image_width) * cinfo.image_height > maxPixels) {
    jpeg_destroy_decompress(&cinfo);
    return Outcome::kTooLarge;
  }
  if (cinfo.jpeg_color_space == JCS_CMYK || cinfo.jpeg_color_space == JCS_YCCK) {
    jpeg_destroy_decompress(&cinfo);
    return Outcome::kUnsupported;
  }
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  cinfo.scale_num = 1;
  cinfo.scale_denom = static_cast<unsigned int>(scaleDenom);
  cinfo.dct_method = JDCT_ISLOW;
  jpeg_start_decompress(&cinfo);
  out->width = static_cast<int>(cinfo.output_width);
  out->height = static_cast<int>(cinfo.output_height);
  out->channels = cinfo.output_components;
  const size_t stride = static_cast<size_t>(out->width) * out->channels;
  out->pixels.resize(stride * out->height);
  while (cinfo.output_scanline < cinfo.output_height) {
    JSAMPROW row = out->pixels.data() + stride * cinfo.output_scanline;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  const long warnings = err.base.num_warnings;
  if (warnings > 0) (*cinfo.err->format_message)(reinterpret_cast<j_common_ptr>(&cinfo), message);
  jpeg_destroy_decompress(&cinfo);
  return warnings > 0 ? Outcome::kInvalid : Outcome::kOk;
}

}  // namespace

DecodedImage DecodeJpeg(const uint8_t* data, size_t length, int scaleDenom, double maxPixels) {
  if (scaleDenom != 1 && scaleDenom != 2 && scaleDenom != 4 && scaleDenom != 8) {
    throw KernelError("ERR_QUIVER_NATIVE_ARGUMENT", "scale must be 1, 2, 4 or 8");
  }
  DecodedImage out;
  char message[JMSG_LENGTH_MAX] = {0};
  switch (DecodeInto(data, length, scaleDenom, maxPixels, &out, message)) {
    case Outcome::kOk:
      return out;
    case Outcome::kTooLarge:
      throw KernelError("ERR_QUIVER_JPEG_UNSUPPORTED", "JPEG has more pixels than allowed");
    case Outcome::kUnsupported:
      throw KernelError("ERR_QUIVER_JPEG_UNSUPPORTED", "CMYK and YCCK JPEGs are left to libvips");
    case Outcome::kInvalid:
    default:
      throw KernelError("ERR_QUIVER_JPEG_INVALID", std::string("JPEG could not be decoded: ") + message);
  }
}

}  // namespace quiver
