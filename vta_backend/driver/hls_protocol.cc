// Run protocol of the Xilinx HLS design (see run_protocol.h).
#include "absl/time/clock.h"
#include "vta_backend/driver/poll.h"
#include "vta_backend/driver/run_protocol.h"

namespace vtaserve::vta::driver {
namespace {

constexpr uint32_t kBusError = 0xffffffffu;

class HlsProtocol : public RunProtocol {
 public:
  explicit HlsProtocol(PollOptions poll) : poll_(poll) {}
  size_t window_bytes() const override { return 4 * hls::kBlockBytes; }
  const char* name() const override { return "xilinx-hls"; }

  absl::Status Run(RegisterWindow& regs, uint32_t insn_addr,
                   uint32_t insn_count, absl::Duration timeout) override {
    using namespace hls;
    const absl::Time start = absl::Now();
    if (regs.Read32(kCompute + kCtrl) == kBusError) {
      return absl::InternalError(
          "xilinx-hls: bus error (compute control reads 0xffffffff; is the "
          "VTA bitstream loaded?)");
    }
    regs.Write32(kFetch + kFetchInsnCount, insn_count);
    regs.Write32(kFetch + kFetchInsnAddr, insn_addr);
    regs.Write32(kFetch + kCtrl, kApStart);
    regs.Write32(kLoad + kCtrl, kApStart | kAutoRestart);
    regs.Write32(kCompute + kCtrl, kApStart | kAutoRestart);
    regs.Write32(kStore + kCtrl, kApStart | kAutoRestart);
    absl::SleepFor(poll_.settle);
    return PollUntil(
        [&regs]() -> int {
          const uint32_t ctrl = regs.Read32(kCompute + kCtrl);
          const uint32_t done = regs.Read32(kCompute + kComputeDone);
          const uint32_t fetch = regs.Read32(kFetch + kCtrl);
          if (ctrl == kBusError || done == kBusError || fetch == kBusError)
            return -1;
          // A done still set from the previous run while fetch has not
          // gone idle is not this run's.
          return (done & 1) != 0 && (fetch & kApIdle) != 0 ? 1 : 0;
        },
        start, timeout, poll_, name());
  }

 private:
  PollOptions poll_;
};

}  // namespace

std::unique_ptr<RunProtocol> MakeHlsProtocol(PollOptions poll) {
  return std::make_unique<HlsProtocol>(poll);
}

}  // namespace vtaserve::vta::driver
