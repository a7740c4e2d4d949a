// Shared pieces of the tests that run the real vtaserve binary: model
// repositories written with the zoo's generated ResNet-18, gRPC clients with
// their own connection each, and the readiness probe.
#ifndef VTASERVE_TESTS_INTEGRATION_RELIABILITY_UTIL_H_
#define VTASERVE_TESTS_INTEGRATION_RELIABILITY_UTIL_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "proto/health.grpc.pb.h"
#include "proto/inference.grpc.pb.h"

namespace vtaserve::testing {

// Writes <repo>/<name>/1/model.onnx, a generated int8 QDQ ResNet-18 with
// `input_size` square inputs and `classes` outputs, and <repo>/<name>/
// config.pbtxt with `config` (when not empty). Models are generated once per
// process and size, then copied.
absl::Status WriteResNet18(const std::filesystem::path& repo,
                           const std::string& name, int input_size, int classes,
                           const std::string& config);

// A stub on its own TCP connection to 127.0.0.1:`port` (as a separate
// client process would have).
std::unique_ptr<inference::GRPCInferenceService::Stub> NewStub(int port);
std::unique_ptr<grpc::health::v1::Health::Stub> NewHealthStub(int port);

// Polls ServerReady until it answers true; the last error otherwise.
absl::Status AwaitReady(inference::GRPCInferenceService::Stub& stub,
                        absl::Duration timeout);

// A ModelInfer request for `model` with one FP32 [1,3,S,S] input of
// deterministic values.
inference::ModelInferRequest ImageRequest(const std::string& model,
                                          int input_size, uint32_t seed);

// An integer from the environment variable `name`, or `fallback`.
int EnvInt(const char* name, int fallback);

}  // namespace vtaserve::testing

#endif  // VTASERVE_TESTS_INTEGRATION_RELIABILITY_UTIL_H_
