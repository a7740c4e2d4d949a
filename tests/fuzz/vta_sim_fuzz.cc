// libFuzzer target: the VTA instruction-stream path. Random instruction
// words, uops and DRAM contents (layout in vta_sim_fuzz.h) run on a fresh
// small simulator: the validator must refuse (InvalidArgument), the run
// must time out in modeled device time (DeadlineExceeded) or finish; never
// a crash, a hang or an out-of-bounds access. After any outcome the device
// must still run a trivial program.
#include "tests/fuzz/vta_sim_fuzz.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "absl/types/span.h"
#include "vta_backend/config.h"
#include "vta_backend/isa/isa.h"
#include "vta_backend/sim/sim_device.h"

namespace {

using vtaserve::vta::DeviceBuffer;
using vtaserve::vta::VtaConfig;
namespace fz = vtaserve::fuzz;
namespace sim = vtaserve::vta::sim;

const VtaConfig& BaseConfig() {
  static const VtaConfig* base = [] {
    auto c = vtaserve::vta::VtaConfigPreset("pynq");
    if (!c.ok()) std::abort();
    return new VtaConfig(*c);
  }();
  return *base;
}

DeviceBuffer MustAlloc(sim::SimDevice& dev, size_t bytes,
                       absl::Span<const uint8_t> contents) {
  auto buf = dev.AllocBuffer(bytes);
  if (!buf.ok()) std::abort();
  if (!contents.empty() && !dev.CopyToDevice(*buf, 0, contents).ok()) {
    std::abort();
  }
  return *buf;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3) return 0;
  const uint8_t flags = data[0];
  const size_t n_insns = data[1] % (fz::kVtaMaxInsns + 1);
  const size_t n_uops = data[2] % (fz::kVtaMaxUops + 1);
  data += 3;
  size -= 3;
  if (size < n_insns * 16 + n_uops * 4) return 0;
  const uint8_t* insns = data;
  const uint8_t* uops = insns + n_insns * 16;
  const uint8_t* rest = uops + n_uops * 4;
  const size_t rest_size =
      std::min(size - n_insns * 16 - n_uops * 4, fz::kVtaDataBytes);

  const VtaConfig config = fz::SmallVtaConfig(flags, BaseConfig());
  sim::SimOptions options;
  options.memory_bytes = 1 << 20;
  options.max_alloc_bytes = 1 << 16;
  auto dev_or = sim::SimDevice::Create(config, options);
  if (!dev_or.ok()) std::abort();  // SmallVtaConfig is always valid
  sim::SimDevice& dev = **dev_or;

  const DeviceBuffer uop_buf =
      MustAlloc(dev, 4096, absl::MakeConstSpan(uops, n_uops * 4));
  const DeviceBuffer data_buf =
      MustAlloc(dev, fz::kVtaDataBytes, absl::MakeConstSpan(rest, rest_size));
  if (uop_buf.phys_addr != fz::kVtaUopPhys ||
      data_buf.phys_addr != fz::kVtaDataPhys) {
    std::abort();  // the layout the seeds rely on changed
  }
  const DeviceBuffer insn_buf =
      MustAlloc(dev, std::max<size_t>(16, n_insns * 16),
                absl::MakeConstSpan(insns, n_insns * 16));

  auto run = dev.Run(insn_buf.phys_addr, static_cast<uint32_t>(n_insns),
                     absl::Microseconds(200));
  if (!run.ok()) {
    const auto code = run.status().code();
    if (code != absl::StatusCode::kInvalidArgument &&
        code != absl::StatusCode::kDeadlineExceeded) {
      std::abort();  // only these two are documented for a bad stream
    }
  }
  // The device stays usable: a lone FINISH runs.
  auto codec = vtaserve::vta::isa::IsaCodec::Create(config);
  if (!codec.ok()) std::abort();
  auto finish = codec->Encode(vtaserve::vta::isa::FinishInsn{});
  if (!finish.ok()) std::abort();
  uint8_t word[16];
  vtaserve::vta::isa::StoreEncodedInsn(*finish, word);
  if (!dev.CopyToDevice(insn_buf, 0, absl::MakeConstSpan(word, 16)).ok() ||
      !dev.Run(insn_buf.phys_addr, 1, absl::Seconds(1)).ok()) {
    std::abort();
  }
  return 0;
}
