// Image decoding (PNG via libpng, JPEG via libjpeg) and preprocessing into
// a model input tensor: bilinear resize, then ImageNet mean/std normalized
// float, or raw uint8 / centered int8. Pure functions; thread-safe.
#ifndef VTASERVE_TOOLS_VTASERVE_CLIENT_IMAGE_H_
#define VTASERVE_TOOLS_VTASERVE_CLIENT_IMAGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace vtaserve::client {

// 8-bit RGB, row-major, interleaved (HWC).
struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<uint8_t> pixels;  // width * height * 3
};

// Largest image decoded (width x height): 64 M pixels, 192 MiB of RGB.
// Both formats store dimensions in the header, so a small corrupt file can
// claim a huge image; it is refused before any pixel buffer is allocated.
inline constexpr int64_t kMaxImagePixels = int64_t{1} << 26;

// Decodes a PNG or JPEG file (by its signature). InvalidArgument for other
// or corrupt files, NotFound if unreadable.
absl::StatusOr<RgbImage> DecodeImage(const std::string& path);

// Decodes PNG or JPEG bytes; `name` labels the errors. InvalidArgument for
// other or corrupt data and for images above kMaxImagePixels.
absl::StatusOr<RgbImage> DecodeImageBytes(absl::string_view bytes,
                                          absl::string_view name);

// Bilinear resize to width x height.
RgbImage Resize(const RgbImage& image, int width, int height);

// Raw bytes of a [1,3,H,W] tensor of `datatype` ("FP32": (x/255 - mean) /
// std with ImageNet statistics; "UINT8": x; "INT8": x - 128).
// InvalidArgument for other datatypes.
absl::StatusOr<std::string> ToNchwTensor(const RgbImage& image,
                                         const std::string& datatype);

}  // namespace vtaserve::client

#endif  // VTASERVE_TOOLS_VTASERVE_CLIENT_IMAGE_H_
