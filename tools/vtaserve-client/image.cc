#include "tools/vtaserve-client/image.h"

#include <jpeglib.h>
#include <png.h>
#include <stdio.h>

#include <algorithm>
#include <cmath>
#include <csetjmp>
#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace vtaserve::client {
namespace {

absl::Status CheckSize(uint64_t width, uint64_t height, absl::string_view path,
                       absl::string_view format) {
  if (width == 0 || height == 0 ||
      width * height > static_cast<uint64_t>(kMaxImagePixels)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": ", format, " of ", width, "x", height,
                     " pixels (at most ", kMaxImagePixels, " pixels)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<RgbImage> DecodePng(absl::string_view bytes,
                                   absl::string_view path) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  if (!png_image_begin_read_from_memory(&image, bytes.data(), bytes.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": bad PNG: ", image.message));
  }
  if (absl::Status st = CheckSize(image.width, image.height, path, "PNG");
      !st.ok()) {
    png_image_free(&image);
    return st;
  }
  image.format = PNG_FORMAT_RGB;
  RgbImage out;
  out.width = static_cast<int>(image.width);
  out.height = static_cast<int>(image.height);
  out.pixels.resize(PNG_IMAGE_SIZE(image));
  if (!png_image_finish_read(&image, nullptr, out.pixels.data(), 0, nullptr)) {
    png_image_free(&image);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": bad PNG: ", image.message));
  }
  return out;
}

struct JpegError {
  jpeg_error_mgr mgr;
  jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void OnJpegError(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<JpegError*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

absl::StatusOr<RgbImage> DecodeJpeg(absl::string_view bytes,
                                    absl::string_view path) {
  jpeg_decompress_struct cinfo;
  JpegError err;
  cinfo.err = jpeg_std_error(&err.mgr);
  err.mgr.error_exit = OnJpegError;
  RgbImage out;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": bad JPEG: ", err.message));
  }
  jpeg_create_decompress(&cinfo);
  jpeg_mem_src(&cinfo, reinterpret_cast<const unsigned char*>(bytes.data()),
               bytes.size());
  jpeg_read_header(&cinfo, TRUE);
  if (absl::Status st =
          CheckSize(cinfo.image_width, cinfo.image_height, path, "JPEG");
      !st.ok()) {
    jpeg_destroy_decompress(&cinfo);
    return st;
  }
  cinfo.out_color_space = JCS_RGB;
  jpeg_start_decompress(&cinfo);
  out.width = static_cast<int>(cinfo.output_width);
  out.height = static_cast<int>(cinfo.output_height);
  out.pixels.resize(static_cast<size_t>(out.width) * out.height * 3);
  while (cinfo.output_scanline < cinfo.output_height) {
    unsigned char* row =
        out.pixels.data() +
        static_cast<size_t>(cinfo.output_scanline) * out.width * 3;
    jpeg_read_scanlines(&cinfo, &row, 1);
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return out;
}

}  // namespace

absl::StatusOr<RgbImage> DecodeImage(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read '", path, "'"));
  std::ostringstream buf;
  buf << in.rdbuf();
  return DecodeImageBytes(buf.str(), path);
}

absl::StatusOr<RgbImage> DecodeImageBytes(absl::string_view bytes,
                                          absl::string_view path) {
  if (bytes.size() >= 8 &&
      png_sig_cmp(reinterpret_cast<png_const_bytep>(bytes.data()), 0, 8) == 0) {
    return DecodePng(bytes, path);
  }
  if (bytes.size() >= 3 && static_cast<uint8_t>(bytes[0]) == 0xFF &&
      static_cast<uint8_t>(bytes[1]) == 0xD8) {
    return DecodeJpeg(bytes, path);
  }
  return absl::InvalidArgumentError(
      absl::StrCat(path, ": neither PNG nor JPEG"));
}

RgbImage Resize(const RgbImage& image, int width, int height) {
  RgbImage out;
  out.width = width;
  out.height = height;
  out.pixels.resize(static_cast<size_t>(width) * height * 3);
  const float sx = static_cast<float>(image.width) / width;
  const float sy = static_cast<float>(image.height) / height;
  for (int y = 0; y < height; ++y) {
    const float fy = std::max(0.0f, (y + 0.5f) * sy - 0.5f);
    const int y0 = std::min(static_cast<int>(fy), image.height - 1);
    const int y1 = std::min(y0 + 1, image.height - 1);
    const float wy = fy - y0;
    for (int x = 0; x < width; ++x) {
      const float fx = std::max(0.0f, (x + 0.5f) * sx - 0.5f);
      const int x0 = std::min(static_cast<int>(fx), image.width - 1);
      const int x1 = std::min(x0 + 1, image.width - 1);
      const float wx = fx - x0;
      for (int c = 0; c < 3; ++c) {
        auto px = [&](int yy, int xx) {
          return static_cast<float>(
              image.pixels[(static_cast<size_t>(yy) * image.width + xx) * 3 +
                           c]);
        };
        const float v = (1 - wy) * ((1 - wx) * px(y0, x0) + wx * px(y0, x1)) +
                        wy * ((1 - wx) * px(y1, x0) + wx * px(y1, x1));
        out.pixels[(static_cast<size_t>(y) * width + x) * 3 + c] =
            static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L));
      }
    }
  }
  return out;
}

absl::StatusOr<std::string> ToNchwTensor(const RgbImage& image,
                                         const std::string& datatype) {
  static constexpr float kMean[3] = {0.485f, 0.456f, 0.406f};
  static constexpr float kStd[3] = {0.229f, 0.224f, 0.225f};
  const size_t plane = static_cast<size_t>(image.width) * image.height;
  std::string out;
  if (datatype == "FP32") {
    std::vector<float> v(plane * 3);
    for (int c = 0; c < 3; ++c) {
      for (size_t i = 0; i < plane; ++i) {
        v[c * plane + i] =
            (image.pixels[i * 3 + c] / 255.0f - kMean[c]) / kStd[c];
      }
    }
    out.assign(reinterpret_cast<const char*>(v.data()),
               v.size() * sizeof(float));
  } else if (datatype == "UINT8" || datatype == "INT8") {
    out.resize(plane * 3);
    const int offset = datatype == "INT8" ? 128 : 0;
    for (int c = 0; c < 3; ++c) {
      for (size_t i = 0; i < plane; ++i) {
        out[c * plane + i] =
            static_cast<char>(image.pixels[i * 3 + c] - offset);
      }
    }
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot feed an image to a ", datatype, " input"));
  }
  return out;
}

}  // namespace vtaserve::client
