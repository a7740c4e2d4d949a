// End to end with a real model file: a generated int8 ResNet-18 (QDQ ONNX,
// 32x32 input) in the repository, imported by the server's ONNX loader,
// served on the CPU backend where available, and checked bit for bit
// against the reference executor on the same imported graph.
#include <cstring>
#include <random>
#include <string>

#include "cpu_backend/cpu_backend.h"
#include "engine/executor.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/reference_backend.h"
#include "engine/zoo/resnet_generator.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "server/server.h"
#include "tests/integration/test_server.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::server {
namespace {

using ::vtaserve::testing::IsOk;

absl::StatusOr<engine::ModelGraph> LoadOnnx(const std::string& path,
                                            const engine::ModelConfig& config) {
  engine::ImportOptions options;
  options.requant.shift_group = config.shift_group;
  options.model_name = config.name;
  return engine::ImportOnnxFile(path, options);
}

TEST(OnnxModelTest, ServesGeneratedResNet18BitExact) {
  const auto repo = testing::FreshDir("onnx_model_test");
  zoo::ResNetSpec spec;
  spec.depth = 18;
  spec.input_size = 32;
  spec.num_classes = 10;
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto model, zoo::GenerateResNet(spec));
  std::filesystem::create_directories(repo / "resnet18" / "1");
  const std::string path = (repo / "resnet18" / "1" / "model.onnx").string();
  ASSERT_THAT(zoo::WriteModel(model, path), IsOk());

  engine::BackendRegistry registry;
  ASSERT_THAT(registry.Register(cpu::CreateCpuBackend(cpu::CpuOptions{})),
              IsOk());
  ASSERT_THAT(registry.Register(engine::CreateReferenceBackend()), IsOk());
  ServerOptions options;
  options.model_repository = repo.string();
  options.grpc_address = "127.0.0.1";
  options.grpc_port = 0;
  options.metrics_port = -1;
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto server,
                                Server::Start(options, &registry, LoadOnnx));
  ASSERT_TRUE(server->Ready());
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto info,
                                server->models().Find("resnet18", ""));
  ASSERT_EQ(info->inputs.size(), 1u);
  const engine::Value& in = info->inputs[0];
  ASSERT_EQ(in.shape, (std::vector<int64_t>{1, 3, 32, 32}));

  // The oracle: the reference executor on the same imported graph.
  engine::BackendRegistry oracle_registry;
  ASSERT_THAT(oracle_registry.Register(engine::CreateReferenceBackend()),
              IsOk());
  engine::ModelConfig defaults;
  defaults.name = "resnet18";
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto graph, LoadOnnx(path, defaults));
  VTASERVE_ASSERT_OK_AND_ASSIGN(
      auto oracle, engine::Executor::Create(std::move(graph), oracle_registry,
                                            engine::PlacementOptions{}));

  testing::Clients clients(server->grpc_port());
  std::mt19937 rng(3);
  for (int round = 0; round < 2; ++round) {
    VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor input,
                                  Tensor::Create(in.dtype, in.shape));
    if (in.dtype == DataType::kFloat32) {
      std::normal_distribution<float> dist(0.0f, 1.0f);
      for (int64_t i = 0; i < input.num_elements(); ++i)
        input.data<float>()[i] = dist(rng);
    } else {
      for (size_t i = 0; i < input.byte_size(); ++i)
        input.bytes()[i] = rng() & 0xff;
    }
    inference::ModelInferRequest req;
    req.set_model_name("resnet18");
    auto* t = req.add_inputs();
    t->set_name(in.name);
    t->set_datatype(std::string(DataTypeName(in.dtype)));
    for (int64_t d : in.shape) t->add_shape(d);
    req.add_raw_input_contents(std::string(
        reinterpret_cast<const char*>(input.bytes()), input.byte_size()));
    (*req.mutable_parameters())["timing"].set_bool_param(true);
    grpc::ClientContext context;
    inference::ModelInferResponse resp;
    grpc::Status s = clients.infer->ModelInfer(&context, req, &resp);
    ASSERT_TRUE(s.ok()) << s.error_message();

    const Tensor* ins[] = {&input};
    VTASERVE_ASSERT_OK_AND_ASSIGN(auto want,
                                  oracle->Run(engine::ExecutionContext{}, ins));
    ASSERT_EQ(resp.raw_output_contents_size(), static_cast<int>(want.size()));
    for (size_t i = 0; i < want.size(); ++i) {
      EXPECT_EQ(resp.raw_output_contents(i),
                std::string(reinterpret_cast<const char*>(want[i].bytes()),
                            want[i].byte_size()))
          << "output " << i;
    }
    EXPECT_TRUE(resp.parameters().count("compute_seconds"));
  }
  server->Shutdown(absl::Seconds(5));
}

}  // namespace
}  // namespace vtaserve::server
