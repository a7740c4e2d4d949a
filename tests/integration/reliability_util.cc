#include "tests/integration/reliability_util.h"

#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <random>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/zoo/resnet_generator.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"

namespace vtaserve::testing {

absl::Status WriteResNet18(const std::filesystem::path& repo,
                           const std::string& name, int input_size, int classes,
                           const std::string& config) {
  static std::mutex mu;
  static std::map<std::pair<int, int>, std::filesystem::path> cache;
  std::filesystem::path source;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache.find({input_size, classes});
    if (it == cache.end()) {
      zoo::ResNetSpec spec;
      spec.depth = 18;
      spec.input_size = input_size;
      spec.num_classes = classes;
      absl::StatusOr<onnx::ModelProto> model = zoo::GenerateResNet(spec);
      if (!model.ok()) return model.status();
      const std::filesystem::path path =
          std::filesystem::path(::testing::TempDir()) /
          absl::StrCat("resnet18_", input_size, "_", classes, ".onnx");
      if (absl::Status s = zoo::WriteModel(*model, path.string()); !s.ok()) {
        return s;
      }
      it = cache.emplace(std::make_pair(input_size, classes), path).first;
    }
    source = it->second;
  }
  const std::filesystem::path dir = repo / name / "1";
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::InternalError(ec.message());
  std::filesystem::copy_file(source, dir / "model.onnx",
                             std::filesystem::copy_options::overwrite_existing,
                             ec);
  if (ec) return absl::InternalError(ec.message());
  if (!config.empty()) {
    std::ofstream(repo / name / "config.pbtxt") << config;
  }
  return absl::OkStatus();
}

namespace {

std::shared_ptr<grpc::Channel> OwnChannel(int port) {
  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  args.SetMaxReceiveMessageSize(64 << 20);
  return grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", port),
                                   grpc::InsecureChannelCredentials(), args);
}

}  // namespace

std::unique_ptr<inference::GRPCInferenceService::Stub> NewStub(int port) {
  return inference::GRPCInferenceService::NewStub(OwnChannel(port));
}

std::unique_ptr<grpc::health::v1::Health::Stub> NewHealthStub(int port) {
  return grpc::health::v1::Health::NewStub(OwnChannel(port));
}

absl::Status AwaitReady(inference::GRPCInferenceService::Stub& stub,
                        absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::string last = "never answered";
  while (absl::Now() < deadline) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
    inference::ServerReadyResponse ready;
    grpc::Status s = stub.ServerReady(&context, {}, &ready);
    if (s.ok() && ready.ready()) return absl::OkStatus();
    last = s.ok() ? "not ready" : s.error_message();
    absl::SleepFor(absl::Milliseconds(50));
  }
  return absl::DeadlineExceededError(absl::StrCat("not ready: ", last));
}

inference::ModelInferRequest ImageRequest(const std::string& model,
                                          int input_size, uint32_t seed) {
  inference::ModelInferRequest r;
  r.set_model_name(model);
  auto* in = r.add_inputs();
  in->set_name("input");
  in->set_datatype("FP32");
  for (int64_t d : {1, 3, input_size, input_size}) in->add_shape(d);
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::string bytes(size_t{3} * input_size * input_size * sizeof(float), '\0');
  for (size_t i = 0; i < bytes.size() / sizeof(float); ++i) {
    const float v = dist(rng);
    std::memcpy(bytes.data() + i * sizeof(float), &v, sizeof(float));
  }
  r.add_raw_input_contents(std::move(bytes));
  return r;
}

int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  int n = 0;
  if (v != nullptr && absl::SimpleAtoi(v, &n)) return n;
  return fallback;
}

}  // namespace vtaserve::testing
