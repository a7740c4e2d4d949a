// The client's image decoding (tools/vtaserve-client/image.h) on hostile
// files: headers that claim huge images are refused before any pixel
// buffer is allocated; truncated and foreign data give InvalidArgument.
#include "tools/vtaserve-client/image.h"

// clang-format off
#include <stdio.h>  // before jpeglib.h, which needs FILE and size_t
#include <jpeglib.h>
// clang-format on
#include <png.h>
#include <sys/resource.h>
#include <zlib.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::client {
namespace {

using ::testing::HasSubstr;
using ::vtaserve::testing::StatusIs;

std::string Png(int width, int height) {
  png_image image;
  std::memset(&image, 0, sizeof(image));
  image.version = PNG_IMAGE_VERSION;
  image.width = width;
  image.height = height;
  image.format = PNG_FORMAT_RGB;
  std::vector<uint8_t> pixels(PNG_IMAGE_SIZE(image), 7);
  png_alloc_size_t size = 0;
  EXPECT_TRUE(png_image_write_to_memory(&image, nullptr, &size, 0,
                                        pixels.data(), 0, nullptr));
  std::string out(size, '\0');
  EXPECT_TRUE(png_image_write_to_memory(&image, out.data(), &size, 0,
                                        pixels.data(), 0, nullptr));
  out.resize(size);
  return out;
}

std::string Jpeg(int width, int height) {
  jpeg_compress_struct cinfo;
  jpeg_error_mgr err;
  cinfo.err = jpeg_std_error(&err);
  jpeg_create_compress(&cinfo);
  unsigned char* buf = nullptr;
  unsigned long size = 0;
  jpeg_mem_dest(&cinfo, &buf, &size);
  cinfo.image_width = width;
  cinfo.image_height = height;
  cinfo.input_components = 3;
  cinfo.in_color_space = JCS_RGB;
  jpeg_set_defaults(&cinfo);
  jpeg_start_compress(&cinfo, TRUE);
  std::vector<uint8_t> row(width * 3, 100);
  while (cinfo.next_scanline < cinfo.image_height) {
    unsigned char* p = row.data();
    jpeg_write_scanlines(&cinfo, &p, 1);
  }
  jpeg_finish_compress(&cinfo);
  std::string out(reinterpret_cast<char*>(buf), size);
  jpeg_destroy_compress(&cinfo);
  std::free(buf);
  return out;
}

void Put32(std::string& s, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i) s[at + i] = static_cast<char>(v >> (24 - 8 * i));
}

long PeakRssKib() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

TEST(ClientImageTest, DecodesPngAndJpeg) {
  auto png = DecodeImageBytes(Png(5, 3), "a.png");
  ASSERT_TRUE(png.ok()) << png.status();
  EXPECT_EQ(png->width, 5);
  EXPECT_EQ(png->height, 3);
  EXPECT_EQ(png->pixels.size(), 45u);
  auto jpeg = DecodeImageBytes(Jpeg(9, 4), "a.jpg");
  ASSERT_TRUE(jpeg.ok()) << jpeg.status();
  EXPECT_EQ(jpeg->width, 9);
  EXPECT_EQ(jpeg->pixels.size(), 9u * 4 * 3);
}

// A PNG whose IHDR (valid CRC) claims 1,000,000 x 1,000,000 pixels: 3 TB of
// RGB, refused from the header alone.
TEST(ClientImageTest, RefusesHugePngFromItsHeader) {
  std::string png = Png(4, 4);
  // Signature (8), IHDR length (4), "IHDR" (4), width at 16, height at 20.
  ASSERT_EQ(png.substr(12, 4), "IHDR");
  Put32(png, 16, 1000000);
  Put32(png, 20, 1000000);
  const uint32_t crc =
      crc32(0, reinterpret_cast<const Bytef*>(png.data() + 12), 4 + 13);
  Put32(png, 29, crc);
  const long before = PeakRssKib();
  EXPECT_THAT(DecodeImageBytes(png, "huge.png"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("huge.png: PNG of 1000000x1000000 pixels")));
  EXPECT_LT(PeakRssKib() - before, 64 * 1024);
}

// A JPEG whose SOF0 claims 65000 x 65000 pixels (12 GB of RGB).
TEST(ClientImageTest, RefusesHugeJpegFromItsHeader) {
  std::string jpeg = Jpeg(8, 8);
  const size_t sof = jpeg.find("\xff\xc0");
  ASSERT_NE(sof, std::string::npos);
  // FFC0, length (2), precision (1), height (2), width (2).
  jpeg[sof + 5] = jpeg[sof + 7] = static_cast<char>(65000 >> 8);
  jpeg[sof + 6] = jpeg[sof + 8] = static_cast<char>(65000 & 0xff);
  const long before = PeakRssKib();
  EXPECT_THAT(DecodeImageBytes(jpeg, "huge.jpg"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("huge.jpg: JPEG of 65000x65000 pixels")));
  EXPECT_LT(PeakRssKib() - before, 64 * 1024);
}

TEST(ClientImageTest, RefusesTruncatedAndForeignData) {
  const std::string png = Png(6, 6);
  EXPECT_THAT(DecodeImageBytes(png.substr(0, png.size() / 2), "t.png"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("t.png")));
  const std::string jpeg = Jpeg(16, 16);
  EXPECT_THAT(DecodeImageBytes(jpeg.substr(0, 20), "t.jpg"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("t.jpg")));
  EXPECT_THAT(DecodeImageBytes("GIF89a....", "x.gif"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("neither PNG nor JPEG")));
}

}  // namespace
}  // namespace vtaserve::client
