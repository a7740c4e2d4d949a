// Start-up that fails loudly, on the real vtaserve binary on 127.0.0.1: a
// gRPC or metrics port already in use, a model repository that does not
// exist or is not a directory exit non-zero with the reason; the opt-ins
// (--reuse-grpc-port, --exit-on-error=false) keep serving; a repository
// where one model fails serves the others and is not ready.
#include <signal.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/integration/reliability_util.h"
#include "tests/integration/server_process.h"
#include "tests/integration/test_server.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::testing {
namespace {

using ::testing::HasSubstr;

constexpr absl::Duration kStartTimeout = absl::Seconds(120);
constexpr absl::Duration kExitTimeout = absl::Seconds(60);

class StartupTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }

  // Starts vtaserve with `args` (loopback, short drain), logging to
  // <dir>/<tag>.log.
  std::unique_ptr<ServerProcess> Spawn(const std::string& tag,
                                       std::vector<std::string> args) {
    args.push_back("--exit-timeout-secs=5");
    auto p = ServerProcess::Start(ServerBinary(), args,
                                  dir_ / absl::StrCat(tag, ".log"));
    EXPECT_THAT(p, IsOk());
    return p.ok() ? *std::move(p) : nullptr;
  }

  // SIGTERM, then the exit code must be 0.
  static void ExpectCleanExit(ServerProcess& p) {
    p.Signal(SIGTERM);
    absl::StatusOr<int> code = p.Wait(kExitTimeout);
    ASSERT_THAT(code, IsOk());
    EXPECT_EQ(*code, 0) << p.Log();
  }

  static bool Live(int port) {
    auto stub = NewStub(port);
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    inference::ServerLiveResponse live;
    return stub->ServerLive(&context, {}, &live).ok() && live.live();
  }

  std::filesystem::path dir_;
};

TEST_F(StartupTest, GrpcPortInUseExitsNonZeroNamingThePort) {
  auto first = Spawn("first", {"--grpc-port=0", "--metrics-port=-1"});
  ASSERT_NE(first, nullptr);
  ASSERT_THAT(first->AwaitServing(kStartTimeout), IsOk());
  const std::string port = absl::StrCat(first->grpc_port());
  auto second = Spawn("second", {"--grpc-port=" + port, "--metrics-port=-1"});
  ASSERT_NE(second, nullptr);
  absl::StatusOr<int> code = second->Wait(kExitTimeout);
  ASSERT_THAT(code, IsOk()) << second->Log();
  EXPECT_NE(*code, 0);
  EXPECT_THAT(second->Log(), HasSubstr("port " + port + " is in use"));
  EXPECT_THAT(second->Log(), ::testing::Not(HasSubstr("serving gRPC")));
  // The first one still serves, alone.
  EXPECT_TRUE(Live(first->grpc_port()));
  ASSERT_NO_FATAL_FAILURE(ExpectCleanExit(*first));
}

TEST_F(StartupTest, ReuseGrpcPortLetsTwoServersShareIt) {
  auto first = Spawn(
      "first", {"--grpc-port=0", "--metrics-port=-1", "--reuse-grpc-port"});
  ASSERT_NE(first, nullptr);
  ASSERT_THAT(first->AwaitServing(kStartTimeout), IsOk());
  const std::string port = absl::StrCat(first->grpc_port());
  auto second = Spawn("second", {"--grpc-port=" + port, "--metrics-port=-1",
                                 "--reuse-grpc-port=true"});
  ASSERT_NE(second, nullptr);
  ASSERT_THAT(second->AwaitServing(kStartTimeout), IsOk());
  EXPECT_EQ(second->grpc_port(), first->grpc_port());
  ASSERT_NO_FATAL_FAILURE(ExpectCleanExit(*second));
  ASSERT_NO_FATAL_FAILURE(ExpectCleanExit(*first));
}

TEST_F(StartupTest, MetricsPortInUseExitsNonZeroNamingThePort) {
  auto first = Spawn("first", {"--grpc-port=0", "--metrics-port=0"});
  ASSERT_NE(first, nullptr);
  ASSERT_THAT(first->AwaitServing(kStartTimeout), IsOk());
  ASSERT_GT(first->metrics_port(), 0);
  const std::string port = absl::StrCat(first->metrics_port());
  auto second = Spawn("second", {"--grpc-port=0", "--metrics-port=" + port});
  ASSERT_NE(second, nullptr);
  absl::StatusOr<int> code = second->Wait(kExitTimeout);
  ASSERT_THAT(code, IsOk()) << second->Log();
  EXPECT_NE(*code, 0);
  EXPECT_THAT(second->Log(),
              HasSubstr("cannot serve metrics on 0.0.0.0:" + port));
  EXPECT_TRUE(Live(first->grpc_port()));
  ASSERT_NO_FATAL_FAILURE(ExpectCleanExit(*first));
}

TEST_F(StartupTest, MissingRepositoryExitsNonZeroWithTheReason) {
  const std::string repo = (dir_ / "absent").string();
  auto p = Spawn("server", {"--model-repository=" + repo, "--grpc-port=0",
                            "--metrics-port=-1"});
  ASSERT_NE(p, nullptr);
  absl::StatusOr<int> code = p->Wait(kExitTimeout);
  ASSERT_THAT(code, IsOk()) << p->Log();
  EXPECT_NE(*code, 0);
  EXPECT_THAT(p->Log(),
              HasSubstr("model repository '" + repo + "' does not exist"));
}

TEST_F(StartupTest, RepositoryThatIsAFileExitsNonZeroWithTheReason) {
  const std::string repo = (dir_ / "file").string();
  std::ofstream(repo) << "not a folder";
  auto p = Spawn("server", {"--model-repository=" + repo, "--grpc-port=0",
                            "--metrics-port=-1"});
  ASSERT_NE(p, nullptr);
  absl::StatusOr<int> code = p->Wait(kExitTimeout);
  ASSERT_THAT(code, IsOk()) << p->Log();
  EXPECT_NE(*code, 0);
  EXPECT_THAT(p->Log(), HasSubstr("is not a directory"));
}

TEST_F(StartupTest, ExitOnErrorFalseKeepsRunningNotReady) {
  const std::string repo = (dir_ / "absent").string();
  auto p = Spawn("server", {"--model-repository=" + repo, "--grpc-port=0",
                            "--metrics-port=-1", "--exit-on-error=false"});
  ASSERT_NE(p, nullptr);
  ASSERT_THAT(p->AwaitServing(kStartTimeout), IsOk());
  EXPECT_THAT(p->Log(), HasSubstr("does not exist"));
  EXPECT_TRUE(Live(p->grpc_port()));
  auto stub = NewStub(p->grpc_port());
  grpc::ClientContext context;
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub->ServerReady(&context, {}, &ready).ok());
  EXPECT_FALSE(ready.ready());
  ASSERT_NO_FATAL_FAILURE(ExpectCleanExit(*p));
}

TEST_F(StartupTest, FailedModelLeavesOthersServingAndServerNotReady) {
  const std::filesystem::path repo = dir_ / "repo";
  ASSERT_THAT(WriteResNet18(repo, "good", 32, 10, "placement: [\"cpu\"]\n"),
              IsOk());
  WriteModel(repo, "broken", 1, "not an onnx file", "");
  auto p = Spawn("server", {"--model-repository=" + repo.string(),
                            "--grpc-port=0", "--metrics-port=-1"});
  ASSERT_NE(p, nullptr);
  ASSERT_THAT(p->AwaitServing(kStartTimeout), IsOk());
  auto stub = NewStub(p->grpc_port());
  // The broken model is reported once the load is over; the good one serves.
  inference::ModelInferResponse response;
  grpc::Status infer;
  for (int i = 0; i < 600; ++i) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
    infer = stub->ModelInfer(&context, ImageRequest("good", 32, 1), &response);
    if (infer.ok()) break;
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_TRUE(infer.ok()) << infer.error_message() << "\n" << p->Log();
  grpc::ClientContext context;
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(stub->ServerReady(&context, {}, &ready).ok());
  EXPECT_FALSE(ready.ready());
  EXPECT_THAT(p->Log(), HasSubstr("model 'broken'"));
  ASSERT_NO_FATAL_FAILURE(ExpectCleanExit(*p));
}

}  // namespace
}  // namespace vtaserve::testing
