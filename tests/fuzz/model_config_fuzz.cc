// libFuzzer target: config.pbtxt text -> ParseModelConfig
// (engine/model_config.h). Any text gives a validated config or an
// InvalidArgument naming the problem; a parsed config stays inside the
// documented bounds.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "engine/common/logging.h"
#include "engine/model_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = vtaserve::engine::ParseModelConfig(text, "fuzz/config.pbtxt",
                                                   "fuzz_model");
  if (!config.ok()) {
    if (config.status().code() != absl::StatusCode::kInvalidArgument) {
      std::abort();  // only InvalidArgument is documented
    }
    return 0;
  }
  if (config->max_batch_size < 0 || config->max_queue_size < 0 ||
      config->concurrent_executions < 1 || config->cpu_threads < 0 ||
      config->name != "fuzz_model") {
    std::abort();  // validation let an out-of-range value through
  }
  (void)config->ToBackendOptions();
  return 0;
}
