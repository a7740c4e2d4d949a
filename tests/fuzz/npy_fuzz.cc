// libFuzzer target: bytes -> ParseNpy (engine/npy.h). Any input must give a
// tensor or an error status; a parsed tensor must survive a write/read
// round trip unchanged.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>

#include "absl/strings/string_view.h"
#include "engine/npy.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto tensor = vtaserve::ParseNpy(bytes);
  if (!tensor.ok()) return 0;
  const std::string again = vtaserve::SerializeNpy(*tensor);
  auto back = vtaserve::ParseNpy(again);
  if (!back.ok() || back->shape() != tensor->shape() ||
      back->dtype() != tensor->dtype() ||
      back->byte_size() != tensor->byte_size() ||
      (tensor->byte_size() > 0 &&
       std::memcmp(back->bytes(), tensor->bytes(), tensor->byte_size()) != 0)) {
    std::abort();  // a round trip that changes the tensor is a bug
  }
  return 0;
}
