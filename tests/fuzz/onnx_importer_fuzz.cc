// libFuzzer target: bytes -> ImportOnnxBytes (engine/onnx). Any input
// gives a validated graph or an error status; never a crash, a hang or an
// unbounded allocation.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/onnx/onnx_importer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto graph = vtaserve::engine::ImportOnnxBytes(
      bytes, vtaserve::engine::ImportOptions{});
  if (graph.ok() && !graph->Validate().ok()) std::abort();
  return 0;
}
