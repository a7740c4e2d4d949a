// libFuzzer target: bytes -> DecodeImageBytes (the client's PNG/JPEG
// decoding, tools/vtaserve-client/image.h), then the resize and tensor
// conversion the client runs before sending. A decoded image must hold
// exactly width x height x 3 bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "tools/vtaserve-client/image.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace client = vtaserve::client;
  auto image = client::DecodeImageBytes(
      absl::string_view(reinterpret_cast<const char*>(data), size), "fuzz");
  if (!image.ok()) {
    if (image.status().code() != absl::StatusCode::kInvalidArgument) {
      std::abort();
    }
    return 0;
  }
  if (image->width <= 0 || image->height <= 0 ||
      image->pixels.size() !=
          static_cast<size_t>(image->width) * image->height * 3) {
    std::abort();
  }
  const client::RgbImage small = client::Resize(*image, 7, 5);
  for (const char* dtype : {"FP32", "UINT8", "INT8"}) {
    auto t = client::ToNchwTensor(small, dtype);
    if (!t.ok()) std::abort();
  }
  return 0;
}
