// Run protocol of the Chisel design of DE10-Nano (see run_protocol.h).
#include "absl/time/clock.h"
#include "vta_backend/driver/poll.h"
#include "vta_backend/driver/run_protocol.h"

namespace vtaserve::vta::driver {
namespace {

constexpr uint32_t kBusError = 0xffffffffu;

class ChiselProtocol : public RunProtocol {
 public:
  explicit ChiselProtocol(PollOptions poll) : poll_(poll) {}
  size_t window_bytes() const override { return chisel::kBlockBytes; }
  const char* name() const override { return "chisel"; }

  absl::Status Run(RegisterWindow& regs, uint32_t insn_addr,
                   uint32_t insn_count, absl::Duration timeout) override {
    using namespace chisel;
    const absl::Time start = absl::Now();
    if (regs.Read32(kCtrl) == kBusError) {
      return absl::InternalError(
          "chisel: bus error (control reads 0xffffffff; is the VTA bitstream "
          "loaded?)");
    }
    regs.Write32(kEvent, 0);
    regs.Write32(kInsnCount, insn_count);
    regs.Write32(kInsnAddr, insn_addr);
    regs.Write32(kCtrl, kLaunch);
    absl::SleepFor(poll_.settle);
    return PollUntil(
        [&regs]() -> int {
          const uint32_t ctrl = regs.Read32(kCtrl);
          if (ctrl == kBusError) return -1;
          return (ctrl & kDone) != 0 ? 1 : 0;
        },
        start, timeout, poll_, name());
  }

 private:
  PollOptions poll_;
};

}  // namespace

std::unique_ptr<RunProtocol> MakeChiselProtocol(PollOptions poll) {
  return std::make_unique<ChiselProtocol>(poll);
}

}  // namespace vtaserve::vta::driver
