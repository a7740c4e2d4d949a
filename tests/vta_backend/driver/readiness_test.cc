// The device self-test gates readiness: a VTA backend whose board (the
// register-level model) answers with bus errors keeps the server's
// DeviceProbe not ready; once the board answers, the next probe passes and
// reports the change. A board whose nodes do not exist fails to open with
// Unavailable naming the node (what vtaserve --vta-device=pynq logs here).
#include <unistd.h>

#include <atomic>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/device_probe.h"
#include "tests/testing/status_matchers.h"
#include "tests/vta_backend/driver/register_model.h"
#include "vta_backend/driver/device_selection.h"
#include "vta_backend/vta_backend.h"

namespace vtaserve::vta {
namespace {

using ::testing::HasSubstr;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

TEST(ReadinessTest, SelfTestGatesTheDeviceProbe) {
  testing::RegisterModelOptions mo;
  VTASERVE_ASSERT_OK_AND_ASSIGN(mo.config, VtaConfigPreset("pynq"));
  mo.dram_bytes = size_t{4} << 20;
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto model, testing::RegisterModel::Create(mo));
  model->SetFault(testing::ModelFault::kBusError);
  VtaOptions vo;
  vo.run_timeout = absl::Seconds(2);
  vo.device_factory =
      [&model](const VtaConfig&) -> absl::StatusOr<std::shared_ptr<VtaDevice>> {
    auto d = model->OpenDevice();
    if (!d.ok()) return d.status();
    return std::shared_ptr<VtaDevice>(*std::move(d));
  };
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto backend, CreateVtaBackend(vo));
  std::atomic<int> changes{0};
  server::DeviceProbe probe(backend.get(), absl::Milliseconds(50));
  EXPECT_FALSE(probe.Ready());
  probe.Start([&changes] { changes.fetch_add(1); });
  absl::SleepFor(absl::Milliseconds(300));  // several failing probes
  EXPECT_FALSE(probe.Ready());
  EXPECT_EQ(changes.load(), 0);
  model->SetFault(testing::ModelFault::kNone);
  for (int i = 0; i < 500 && !probe.Ready(); ++i)
    absl::SleepFor(absl::Milliseconds(10));
  EXPECT_TRUE(probe.Ready());
  probe.Stop();
  EXPECT_EQ(changes.load(), 1);
}

TEST(ReadinessTest, NoBackendIsReadyAtOnce) {
  server::DeviceProbe probe(nullptr, absl::Seconds(1));
  EXPECT_TRUE(probe.Ready());
}

TEST(ReadinessTest, MissingBoardNodesFailWithUnavailableNamingTheNode) {
  VtaOptions vo;
  ASSERT_THAT(ApplyVtaDevice("pynq", "", false, vo), IsOk());
  EXPECT_EQ(vo.config, "pynq");
  if (access("/dev/uio0", F_OK) == 0) GTEST_SKIP() << "a board is present";
  EXPECT_THAT(CreateVtaBackend(vo),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("/dev/uio0")));
  EXPECT_THAT(ApplyVtaDevice("zynq", "", false, vo),
              StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ApplyVtaDevice("sim", "x.json", false, vo),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ApplyVtaDevice("de10nano", "/nonexistent.json", false, vo),
              StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace vtaserve::vta
