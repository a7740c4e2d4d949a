// Fixture support for the in-process integration tests: a temporary model
// repository, a real Server on 127.0.0.1 with OS-chosen ports, gRPC stubs,
// and a plain-socket HTTP GET for the metrics endpoint.
#ifndef VTASERVE_TESTS_INTEGRATION_TEST_SERVER_H_
#define VTASERVE_TESTS_INTEGRATION_TEST_SERVER_H_

#include <filesystem>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "engine/backend_registry.h"
#include "engine/model_manager.h"
#include "proto/health.grpc.pb.h"
#include "proto/inference.grpc.pb.h"
#include "server/server.h"

namespace vtaserve::testing {

// GET http://127.0.0.1:<port><path>; the body on a 200 response.
absl::StatusOr<std::string> HttpGet(int port, const std::string& path);

// A fresh empty directory under the test temp dir.
std::filesystem::path FreshDir(const std::string& name);

// Writes <repo>/<name>/<version>/model.onnx with `onnx_bytes` and, when
// non-empty, <repo>/<name>/config.pbtxt.
void WriteModel(const std::filesystem::path& repo, const std::string& name,
                int version, const std::string& onnx_bytes,
                const std::string& config);

// Channel and stubs for a server on 127.0.0.1:`port`.
struct Clients {
  explicit Clients(int port);
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<inference::GRPCInferenceService::Stub> infer;
  std::unique_ptr<grpc::health::v1::Health::Stub> health;
};

}  // namespace vtaserve::testing

#endif  // VTASERVE_TESTS_INTEGRATION_TEST_SERVER_H_
