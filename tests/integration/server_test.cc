// The real server in-process on 127.0.0.1 (ports chosen by the OS), driven
// through real gRPC stubs: every RPC, validation codes, concurrency against
// the reference executor, queueing, deadlines, drain, health and metrics.
#include "server/server.h"

#include <cstring>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/notification.h"
#include "engine/executor.h"
#include "engine/reference_backend.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "gtest/gtest.h"
#include "tests/integration/test_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_graphs.h"

namespace vtaserve::server {
namespace {

using ::grpc::health::v1::HealthCheckRequest;
using ::grpc::health::v1::HealthCheckResponse;
using ::testing::Contains;
using ::testing::HasSubstr;
using ::vtaserve::testing::Clients;
using ::vtaserve::testing::Gate;
using ::vtaserve::testing::GatedBackend;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::TinyClassifier;

constexpr int kInputFloats = 3 * 8 * 8;

std::vector<float> RandomImage(uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  std::vector<float> v(kInputFloats);
  for (float& x : v) x = dist(rng);
  return v;
}

inference::ModelInferRequest MakeRequest(const std::string& model,
                                         const std::vector<float>& image,
                                         int64_t batch = 1) {
  inference::ModelInferRequest r;
  r.set_model_name(model);
  r.set_id("req-1");
  auto* in = r.add_inputs();
  in->set_name("input");
  in->set_datatype("FP32");
  for (int64_t d : {batch, int64_t{3}, int64_t{8}, int64_t{8}})
    in->add_shape(d);
  std::string bytes;
  for (int64_t b = 0; b < batch; ++b) {
    bytes.append(reinterpret_cast<const char*>(image.data()),
                 image.size() * sizeof(float));
  }
  r.add_raw_input_contents(bytes);
  return r;
}

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    gate_ = std::make_shared<Gate>();
    ASSERT_THAT(registry_.Register(std::make_unique<GatedBackend>(gate_)),
                IsOk());
    ASSERT_THAT(oracle_registry_.Register(engine::CreateReferenceBackend()),
                IsOk());
    auto oracle = engine::Executor::Create(TinyClassifier(), oracle_registry_,
                                           engine::PlacementOptions{});
    ASSERT_THAT(oracle, IsOk());
    oracle_ = *std::move(oracle);

    repo_ = testing::FreshDir(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    testing::WriteModel(repo_, "tiny", 1, "tiny", "");
    testing::WriteModel(repo_, "tiny", 2, "tiny",
                        "max_batch_size: 4\n"
                        "concurrent_executions: 2\n"
                        "vta_config: \"test_cfg\"\n");
    testing::WriteModel(repo_, "slow", 1, "tiny",
                        "concurrent_executions: 1\nmax_queue_size: 1\n");
    StartServer(ServerOptions{});
  }

  void StartServer(ServerOptions options) {
    options.model_repository = repo_.string();
    options.grpc_address = "127.0.0.1";
    options.grpc_port = 0;
    options.metrics_address = "127.0.0.1";
    // Metrics only where scraped: stopping the HTTP exposer takes ~2 s.
    if (options.metrics_port != 0) options.metrics_port = -1;
    auto server = Server::Start(
        options, &registry_,
        [](const std::string& path,
           const engine::ModelConfig&) -> absl::StatusOr<engine::ModelGraph> {
          std::ifstream in(path);
          std::string content((std::istreambuf_iterator<char>(in)), {});
          if (content == "tiny") return TinyClassifier();
          return absl::InvalidArgumentError("not a test model");
        });
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
    clients_ = std::make_unique<Clients>(server_->grpc_port());
  }

  void TearDown() override {
    gate_->Open();
    if (server_) server_->Shutdown(absl::Seconds(5));
  }

  // The reference executor's output bytes for `image` (batch 1); on an
  // oracle error, a failure and "" (which no response matches).
  std::string Expected(const std::vector<float>& image) {
    auto t = Tensor::Create(DataType::kFloat32, {1, 3, 8, 8});
    if (!t.ok()) {
      ADD_FAILURE() << t.status();
      return "";
    }
    std::memcpy(t->bytes(), image.data(), t->byte_size());
    const Tensor* ins[] = {&*t};
    auto outs = oracle_->Run(engine::ExecutionContext{}, ins);
    if (!outs.ok() || outs->empty()) {
      ADD_FAILURE() << "oracle: " << outs.status();
      return "";
    }
    return std::string(reinterpret_cast<const char*>((*outs)[0].bytes()),
                       (*outs)[0].byte_size());
  }

  grpc::Status Infer(const inference::ModelInferRequest& request,
                     inference::ModelInferResponse* response,
                     absl::Duration timeout = absl::Seconds(30)) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return clients_->infer->ModelInfer(&context, request, response);
  }

  HealthCheckResponse::ServingStatus Health(const std::string& service,
                                            grpc::Status* status = nullptr) {
    grpc::ClientContext context;
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    grpc::Status s = clients_->health->Check(&context, request, &response);
    if (status != nullptr) *status = s;
    return response.status();
  }

  std::shared_ptr<Gate> gate_;
  engine::BackendRegistry registry_;
  engine::BackendRegistry oracle_registry_;
  std::unique_ptr<engine::Executor> oracle_;
  std::filesystem::path repo_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Clients> clients_;
};

TEST_F(ServerTest, ServerRpcs) {
  grpc::ClientContext c1;
  inference::ServerLiveResponse live;
  ASSERT_TRUE(clients_->infer->ServerLive(&c1, {}, &live).ok());
  EXPECT_TRUE(live.live());
  grpc::ClientContext c2;
  inference::ServerReadyResponse ready;
  ASSERT_TRUE(clients_->infer->ServerReady(&c2, {}, &ready).ok());
  EXPECT_TRUE(ready.ready());
  grpc::ClientContext c3;
  inference::ServerMetadataResponse meta;
  ASSERT_TRUE(clients_->infer->ServerMetadata(&c3, {}, &meta).ok());
  EXPECT_EQ(meta.name(), "vtaserve");
  EXPECT_THAT(meta.extensions(), Contains("statistics"));
  EXPECT_THAT(meta.extensions(), Contains("model_repository"));
}

TEST_F(ServerTest, ModelReadyMetadataAndConfig) {
  grpc::ClientContext c1;
  inference::ModelReadyRequest rr;
  rr.set_name("tiny");
  inference::ModelReadyResponse ready;
  ASSERT_TRUE(clients_->infer->ModelReady(&c1, rr, &ready).ok());
  EXPECT_TRUE(ready.ready());

  grpc::ClientContext c2;
  inference::ModelMetadataRequest mr;
  mr.set_name("tiny");
  inference::ModelMetadataResponse meta;
  ASSERT_TRUE(clients_->infer->ModelMetadata(&c2, mr, &meta).ok());
  EXPECT_EQ(meta.name(), "tiny");
  EXPECT_THAT(meta.versions(), Contains("2"));
  ASSERT_EQ(meta.inputs_size(), 1);
  EXPECT_EQ(meta.inputs(0).name(), "input");
  EXPECT_EQ(meta.inputs(0).datatype(), "FP32");
  EXPECT_THAT(std::vector<int64_t>(meta.inputs(0).shape().begin(),
                                   meta.inputs(0).shape().end()),
              ::testing::ElementsAre(-1, 3, 8, 8));
  ASSERT_EQ(meta.outputs_size(), 1);
  EXPECT_EQ(meta.outputs(0).name(), "probabilities");
  // Every layer's placement is listed (backend and strategy).
  ASSERT_GT(meta.placements_size(), 0);
  for (const auto& p : meta.placements()) {
    EXPECT_FALSE(p.layer().empty());
    EXPECT_FALSE(p.op().empty());
    EXPECT_EQ(p.backend(), "reference") << p.layer();
    EXPECT_FALSE(p.strategy().empty());
  }

  grpc::ClientContext c3;
  inference::ModelConfigRequest cr;
  cr.set_name("tiny");
  inference::ModelConfigResponse config;
  ASSERT_TRUE(clients_->infer->ModelConfig(&c3, cr, &config).ok());
  EXPECT_EQ(config.config().name(), "tiny");
  EXPECT_EQ(config.config().max_batch_size(), 4);
  ASSERT_EQ(config.config().input_size(), 1);
  EXPECT_EQ(config.config().input(0).data_type(), inference::TYPE_FP32);
  EXPECT_THAT(std::vector<int64_t>(config.config().input(0).dims().begin(),
                                   config.config().input(0).dims().end()),
              ::testing::ElementsAre(3, 8, 8));
  ASSERT_EQ(config.config().instance_group_size(), 1);
  EXPECT_EQ(config.config().instance_group(0).count(), 2);
  EXPECT_EQ(config.config().first_conv(), "auto");
  EXPECT_EQ(config.config().vta_config(), "test_cfg");
  EXPECT_EQ(config.config().version(), 2);
}

TEST_F(ServerTest, InferRawMatchesReference) {
  const std::vector<float> image = RandomImage(1);
  inference::ModelInferResponse resp;
  grpc::Status s = Infer(MakeRequest("tiny", image), &resp);
  ASSERT_TRUE(s.ok()) << s.error_message();
  EXPECT_EQ(resp.model_name(), "tiny");
  EXPECT_EQ(resp.model_version(), "2");
  EXPECT_EQ(resp.id(), "req-1");
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "probabilities");
  EXPECT_EQ(resp.outputs(0).datatype(), "FP32");
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  EXPECT_EQ(resp.raw_output_contents(0), Expected(image));
  EXPECT_TRUE(resp.parameters().empty());
}

TEST_F(ServerTest, InferTypedAndBatched) {
  const std::vector<float> image = RandomImage(2);
  inference::ModelInferRequest req = MakeRequest("tiny", image);
  req.clear_raw_input_contents();
  for (float v : image) {
    req.mutable_inputs(0)->mutable_contents()->add_fp32_contents(v);
  }
  inference::ModelInferResponse resp;
  ASSERT_TRUE(Infer(req, &resp).ok());
  EXPECT_EQ(resp.raw_output_contents(0), Expected(image));

  inference::ModelInferResponse batched;
  ASSERT_TRUE(Infer(MakeRequest("tiny", image, 3), &batched).ok());
  EXPECT_THAT(std::vector<int64_t>(batched.outputs(0).shape().begin(),
                                   batched.outputs(0).shape().end()),
              ::testing::ElementsAre(3, 10));
  const std::string one = Expected(image);
  EXPECT_EQ(batched.raw_output_contents(0), one + one + one);
}

TEST_F(ServerTest, TimingParameterGivesBreakdown) {
  inference::ModelInferRequest req = MakeRequest("tiny", RandomImage(3));
  (*req.mutable_parameters())["timing"].set_bool_param(true);
  inference::ModelInferResponse resp;
  ASSERT_TRUE(Infer(req, &resp).ok());
  const auto& p = resp.parameters();
  ASSERT_TRUE(p.count("queue_seconds"));
  ASSERT_TRUE(p.count("compute_seconds"));
  EXPECT_GT(p.at("compute_seconds").double_param(), 0.0);
  ASSERT_TRUE(p.count("layer_seconds/conv1"));
  EXPECT_GT(p.at("layer_seconds/conv1").double_param(), 0.0);
  EXPECT_EQ(p.at("layer_device/conv1").string_param(), "reference");
  // The layers run inside the timed execution: their sum cannot exceed it.
  double layer_sum = 0;
  for (const auto& [key, value] : p) {
    if (key.rfind("layer_seconds/", 0) == 0) layer_sum += value.double_param();
  }
  EXPECT_LE(layer_sum, p.at("compute_seconds").double_param());
}

TEST_F(ServerTest, ValidationErrorCodes) {
  const std::vector<float> image = RandomImage(4);
  inference::ModelInferResponse resp;
  auto expect = [&](inference::ModelInferRequest req, grpc::StatusCode code,
                    const std::string& message) {
    grpc::Status s = Infer(req, &resp);
    EXPECT_EQ(s.error_code(), code) << s.error_message();
    EXPECT_THAT(s.error_message(), HasSubstr(message));
  };
  expect(MakeRequest("nope", image), grpc::StatusCode::NOT_FOUND,
         "unknown model 'nope'");
  auto req = MakeRequest("tiny", image);
  req.set_model_version("1");
  expect(req, grpc::StatusCode::NOT_FOUND, "no version '1'");
  req = MakeRequest("tiny", image);
  req.mutable_inputs(0)->set_name("image");
  expect(req, grpc::StatusCode::INVALID_ARGUMENT, "expects [input]");
  req = MakeRequest("tiny", image);
  req.mutable_inputs(0)->set_datatype("UINT8");
  expect(req, grpc::StatusCode::INVALID_ARGUMENT, "expected datatype FP32");
  req = MakeRequest("tiny", image);
  req.mutable_inputs(0)->set_shape(2, 9);
  expect(req, grpc::StatusCode::INVALID_ARGUMENT, "expected shape [-1,3,8,8]");
  req = MakeRequest("tiny", image);
  req.set_raw_input_contents(0, "short");
  expect(req, grpc::StatusCode::INVALID_ARGUMENT, "expected 768 bytes");
  req = MakeRequest("tiny", image);
  req.mutable_inputs(0)->mutable_contents()->add_fp32_contents(1.0f);
  expect(req, grpc::StatusCode::INVALID_ARGUMENT, "got both");
  req = MakeRequest("tiny", image);
  req.clear_raw_input_contents();
  expect(req, grpc::StatusCode::INVALID_ARGUMENT, "no data");
  req = MakeRequest("tiny", image);
  req.add_outputs()->set_name("logits");
  expect(req, grpc::StatusCode::INVALID_ARGUMENT, "unknown output 'logits'");
  req = MakeRequest("tiny", image, 5);
  expect(req, grpc::StatusCode::INVALID_ARGUMENT, "1..4");
  // The server still answers.
  ASSERT_TRUE(Infer(MakeRequest("tiny", image), &resp).ok());
}

TEST_F(ServerTest, ManyConcurrentClientsMatchReference) {
  constexpr int kClients = 8;
  constexpr int kRequests = 25;
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, mismatched{0}, failed{0};
  std::vector<std::string> expected;
  for (int i = 0; i < kRequests; ++i)
    expected.push_back(Expected(RandomImage(100 + i)));
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      // Each client its own channel, as separate processes would have.
      Clients clients(server_->grpc_port());
      for (int i = 0; i < kRequests; ++i) {
        const int k = (i + c) % kRequests;
        grpc::ClientContext context;
        inference::ModelInferResponse resp;
        grpc::Status s = clients.infer->ModelInfer(
            &context, MakeRequest("tiny", RandomImage(100 + k)), &resp);
        if (!s.ok()) {
          failed++;
        } else if (resp.raw_output_contents(0) != expected[k]) {
          mismatched++;
        } else {
          ok++;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(failed.load(), 0);
  EXPECT_EQ(mismatched.load(), 0);
  EXPECT_EQ(ok.load(), kClients * kRequests);

  grpc::ClientContext context;
  inference::ModelStatisticsRequest sr;
  sr.set_name("tiny");
  inference::ModelStatisticsResponse stats;
  ASSERT_TRUE(clients_->infer->ModelStatistics(&context, sr, &stats).ok());
  ASSERT_EQ(stats.model_stats_size(), 1);
  EXPECT_EQ(stats.model_stats(0).inference_stats().success().count(),
            static_cast<uint64_t>(kClients * kRequests));
  EXPECT_EQ(stats.model_stats(0).inference_count(),
            static_cast<uint64_t>(kClients * kRequests));
  EXPECT_GT(stats.model_stats(0).inference_stats().compute_infer().ns(), 0u);
}

// Sends `request` asynchronously; `done` fires with the status.
class AsyncCall {
 public:
  AsyncCall(inference::GRPCInferenceService::Stub* stub,
            const inference::ModelInferRequest& request,
            absl::Duration timeout = absl::Seconds(30)) {
    context_.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    request_ = request;
    stub->async()->ModelInfer(&context_, &request_, &response_,
                              [this](grpc::Status s) {
                                status_ = std::move(s);
                                done_.Notify();
                              });
  }
  grpc::Status Wait() {
    done_.WaitForNotification();
    return status_;
  }
  bool Done() const { return done_.HasBeenNotified(); }
  void Cancel() { context_.TryCancel(); }
  const inference::ModelInferResponse& response() const { return response_; }

 private:
  grpc::ClientContext context_;
  inference::ModelInferRequest request_;
  inference::ModelInferResponse response_;
  grpc::Status status_;
  absl::Notification done_;
};

TEST_F(ServerTest, FullQueueIsResourceExhausted) {
  gate_->Close();
  const auto req = MakeRequest("slow", RandomImage(5));
  AsyncCall running(clients_->infer.get(), req);
  ASSERT_TRUE(gate_->AwaitWaiting(1));
  AsyncCall queued(clients_->infer.get(), req);
  // Wait until the second request sits in the queue.
  for (int i = 0; i < 1000 && server_->models().InFlight() < 2; ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_EQ(server_->models().InFlight(), 2);
  inference::ModelInferResponse resp;
  grpc::Status s = Infer(req, &resp);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(s.error_message(), HasSubstr("queue is full"));
  gate_->Open();
  EXPECT_TRUE(running.Wait().ok());
  EXPECT_TRUE(queued.Wait().ok());
}

TEST_F(ServerTest, DeadlineIsHonouredOnTheServer) {
  gate_->Close();
  const auto req = MakeRequest("slow", RandomImage(6));
  AsyncCall held(clients_->infer.get(), req, absl::Milliseconds(300));
  EXPECT_EQ(held.Wait().error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // The server stopped the execution at its deadline instead of running it.
  for (int i = 0; i < 1000 && server_->models().InFlight() > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_EQ(server_->models().InFlight(), 0);
  EXPECT_EQ(gate_->started.load(), 0);
  auto stats = server_->models().Stats("slow", "");
  ASSERT_THAT(stats, IsOk());
  EXPECT_EQ((*stats)[0].second.fail_count, 1u);
}

TEST_F(ServerTest, ClientCancellationStopsExecution) {
  gate_->Close();
  AsyncCall held(clients_->infer.get(), MakeRequest("slow", RandomImage(7)));
  ASSERT_TRUE(gate_->AwaitWaiting(1));
  held.Cancel();
  EXPECT_EQ(held.Wait().error_code(), grpc::StatusCode::CANCELLED);
  for (int i = 0; i < 1000 && server_->models().InFlight() > 0; ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_EQ(server_->models().InFlight(), 0);
  EXPECT_EQ(gate_->started.load(), 0);
}

TEST_F(ServerTest, DrainOnShutdownLosesNoAcceptedRequest) {
  gate_->Close();
  const auto req = MakeRequest("tiny", RandomImage(8));
  std::vector<std::unique_ptr<AsyncCall>> calls;
  for (int i = 0; i < 4; ++i) {
    calls.push_back(std::make_unique<AsyncCall>(clients_->infer.get(), req));
  }
  ASSERT_TRUE(gate_->AwaitWaiting(2));  // two executions held, two queued
  for (int i = 0; i < 1000 && server_->models().InFlight() < 4; ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_EQ(server_->models().InFlight(), 4);
  std::thread stopper([this] { server_->Shutdown(absl::Seconds(20)); });
  // Draining: health NOT_SERVING, new requests UNAVAILABLE.
  for (int i = 0; i < 1000 && Health("") != HealthCheckResponse::NOT_SERVING;
       ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  EXPECT_EQ(Health(""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health("tiny"), HealthCheckResponse::NOT_SERVING);
  inference::ModelInferResponse resp;
  EXPECT_EQ(Infer(req, &resp).error_code(), grpc::StatusCode::UNAVAILABLE);
  gate_->Open();
  stopper.join();
  const std::string expected = Expected(RandomImage(8));
  for (auto& c : calls) {
    grpc::Status s = c->Wait();
    EXPECT_TRUE(s.ok()) << s.error_message();
    EXPECT_EQ(c->response().raw_output_contents(0), expected);
  }
}

TEST_F(ServerTest, HealthCheckAndWatchFollowModelState) {
  grpc::Status status;
  EXPECT_EQ(Health("", &status), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health("tiny"), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health("inference.GRPCInferenceService"),
            HealthCheckResponse::SERVING);
  Health("no-such-model", &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::NOT_FOUND);

  grpc::ClientContext watch_context;
  HealthCheckRequest watch_request;
  watch_request.set_service("tiny");
  auto reader = clients_->health->Watch(&watch_context, watch_request);
  HealthCheckResponse update;
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVING);

  grpc::ClientContext c1;
  inference::RepositoryModelUnloadRequest unload;
  unload.set_model_name("tiny");
  inference::RepositoryModelUnloadResponse unloaded;
  ASSERT_TRUE(
      clients_->infer->RepositoryModelUnload(&c1, unload, &unloaded).ok());
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);

  grpc::ClientContext c2;
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("tiny");
  inference::RepositoryModelLoadResponse loaded;
  ASSERT_TRUE(clients_->infer->RepositoryModelLoad(&c2, load, &loaded).ok());
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::SERVING);

  server_->Shutdown(absl::Seconds(5));
  ASSERT_TRUE(reader->Read(&update));
  EXPECT_EQ(update.status(), HealthCheckResponse::NOT_SERVING);
  watch_context.TryCancel();
  reader->Finish().IgnoreError();
}

TEST_F(ServerTest, NotServingUntilTheDeviceIsReady) {
  server_->Shutdown(absl::Seconds(1));
  std::atomic<bool> device_up{false};
  ServerOptions options;
  options.model_repository = repo_.string();
  options.grpc_address = "127.0.0.1";
  options.grpc_port = 0;
  options.metrics_port = -1;
  auto server = Server::Start(
      options, &registry_,
      [](const std::string&, const engine::ModelConfig&)
          -> absl::StatusOr<engine::ModelGraph> { return TinyClassifier(); },
      [&device_up] { return device_up.load(); });
  ASSERT_THAT(server, IsOk());
  server_ = *std::move(server);
  clients_ = std::make_unique<Clients>(server_->grpc_port());
  EXPECT_FALSE(server_->Ready());
  EXPECT_EQ(Health(""), HealthCheckResponse::NOT_SERVING);
  EXPECT_EQ(Health("tiny"), HealthCheckResponse::NOT_SERVING);
  device_up = true;
  server_->UpdateHealth();
  EXPECT_TRUE(server_->Ready());
  EXPECT_EQ(Health(""), HealthCheckResponse::SERVING);
  EXPECT_EQ(Health("tiny"), HealthCheckResponse::SERVING);
}

TEST_F(ServerTest, RepositoryIndexLoadUnload) {
  grpc::ClientContext c1;
  inference::RepositoryIndexResponse index;
  ASSERT_TRUE(clients_->infer->RepositoryIndex(&c1, {}, &index).ok());
  std::map<std::string, std::string> states;
  for (const auto& m : index.models()) states[m.name()] = m.state();
  EXPECT_EQ(states["tiny"], "READY");
  EXPECT_EQ(states["slow"], "READY");

  grpc::ClientContext c2;
  inference::RepositoryModelUnloadRequest unload;
  unload.set_model_name("slow");
  inference::RepositoryModelUnloadResponse unloaded;
  ASSERT_TRUE(
      clients_->infer->RepositoryModelUnload(&c2, unload, &unloaded).ok());
  inference::ModelInferResponse resp;
  EXPECT_EQ(Infer(MakeRequest("slow", RandomImage(9)), &resp).error_code(),
            grpc::StatusCode::NOT_FOUND);
  grpc::ClientContext c3;
  inference::ModelReadyRequest rr;
  rr.set_name("slow");
  inference::ModelReadyResponse ready;
  ASSERT_TRUE(clients_->infer->ModelReady(&c3, rr, &ready).ok());
  EXPECT_FALSE(ready.ready());

  grpc::ClientContext c4;
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("missing");
  inference::RepositoryModelLoadResponse loaded;
  EXPECT_EQ(
      clients_->infer->RepositoryModelLoad(&c4, load, &loaded).error_code(),
      grpc::StatusCode::NOT_FOUND);

  // A bad config names the file and the field; the server stops being ready.
  std::ofstream(repo_ / "slow" / "config.pbtxt") << "max_queue_size: -3\n";
  grpc::ClientContext c5;
  load.set_model_name("slow");
  grpc::Status s = clients_->infer->RepositoryModelLoad(&c5, load, &loaded);
  EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(s.error_message(),
              HasSubstr("slow/config.pbtxt: field 'max_queue_size'"));
  EXPECT_FALSE(server_->Ready());
  EXPECT_EQ(Health(""), HealthCheckResponse::NOT_SERVING);
}

TEST_F(ServerTest, ReloadWhileRequestsInFlightLosesNone) {
  gate_->Close();
  const auto req = MakeRequest("tiny", RandomImage(10));
  AsyncCall a(clients_->infer.get(), req);
  AsyncCall b(clients_->infer.get(), req);
  ASSERT_TRUE(gate_->AwaitWaiting(2));
  testing::WriteModel(repo_, "tiny", 3, "tiny", "");
  grpc::ClientContext c;
  inference::RepositoryModelLoadRequest load;
  load.set_model_name("tiny");
  inference::RepositoryModelLoadResponse loaded;
  absl::Notification load_done;
  grpc::Status load_status;
  clients_->infer->async()->RepositoryModelLoad(&c, &load, &loaded,
                                                [&](grpc::Status s) {
                                                  load_status = s;
                                                  load_done.Notify();
                                                });
  // Version 3 serves while version 2 still holds the accepted requests.
  for (int i = 0; i < 2000 && !server_->models().Find("tiny", "3").ok(); ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_THAT(server_->models().Find("tiny", "3"), IsOk());
  EXPECT_FALSE(a.Done());
  gate_->Open();
  EXPECT_TRUE(a.Wait().ok());
  EXPECT_TRUE(b.Wait().ok());
  EXPECT_EQ(a.response().model_version(), "2");
  load_done.WaitForNotification();
  EXPECT_TRUE(load_status.ok()) << load_status.error_message();
  inference::ModelInferResponse resp;
  ASSERT_TRUE(Infer(req, &resp).ok());
  EXPECT_EQ(resp.model_version(), "3");
}

TEST_F(ServerTest, MetricsExposePerLayerSeries) {
  server_->Shutdown(absl::Seconds(1));
  ServerOptions with_metrics;
  with_metrics.metrics_port = 0;
  ASSERT_NO_FATAL_FAILURE(StartServer(with_metrics));
  for (int i = 0; i < 3; ++i) {
    inference::ModelInferResponse resp;
    ASSERT_TRUE(Infer(MakeRequest("tiny", RandomImage(20 + i)), &resp).ok());
  }
  inference::ModelInferResponse resp;
  ASSERT_FALSE(Infer(MakeRequest("nope", RandomImage(1)), &resp).ok());
  ASSERT_GT(server_->metrics_port(), 0);
  auto body = testing::HttpGet(server_->metrics_port(), "/metrics");
  ASSERT_THAT(body, IsOk());
  // name{labels} value -> value, for the lines we look for.
  std::map<std::string, double> samples;
  for (absl::string_view line : absl::StrSplit(*body, '\n')) {
    if (line.empty() || line[0] == '#') continue;
    const size_t space = line.rfind(' ');
    double v = 0;
    if (space == absl::string_view::npos ||
        !absl::SimpleAtod(line.substr(space + 1), &v)) {
      continue;
    }
    samples[std::string(line.substr(0, space))] = v;
  }
  auto find = [&](const std::string& prefix,
                  const std::vector<std::string>& parts) -> double {
    for (const auto& [key, value] : samples) {
      if (key.rfind(prefix, 0) != 0) continue;
      bool all = true;
      for (const auto& p : parts) all = all && key.find(p) != std::string::npos;
      if (all) return value;
    }
    return -1;
  };
  EXPECT_EQ(find("vtaserve_requests_total", {"model=\"tiny\"", "code=\"OK\""}),
            3);
  EXPECT_EQ(find("vtaserve_requests_total",
                 {"model=\"_unknown\"", "code=\"NOT_FOUND\""}),
            1);
  EXPECT_EQ(find("vtaserve_request_duration_seconds_count", {"model=\"tiny\""}),
            3);
  EXPECT_EQ(find("vtaserve_queue_duration_seconds_count", {"model=\"tiny\""}),
            3);
  EXPECT_EQ(find("vtaserve_compute_duration_seconds_count", {"model=\"tiny\""}),
            3);
  EXPECT_EQ(find("vtaserve_layer_duration_seconds_count",
                 {"model=\"tiny\"", "version=\"2\"", "layer=\"conv1\"",
                  "op=\"Conv\"", "device=\"reference\""}),
            3);
  EXPECT_EQ(find("vtaserve_layer_duration_seconds_bucket",
                 {"layer=\"fc\"", "le=\"+Inf\""}),
            3);
  EXPECT_GE(find("vtaserve_layer_duration_seconds_bucket",
                 {"layer=\"fc\"", "le=\"0.0001\""}),
            0);
  EXPECT_EQ(find("vtaserve_layer_placement_info",
                 {"model=\"tiny\"", "layer=\"conv1\"", "backend=\"reference\"",
                  "strategy=\"reference\""}),
            1);
}

TEST_F(ServerTest, MaxMessageSizeIsEnforced) {
  server_->Shutdown(absl::Seconds(1));
  ServerOptions options;
  options.max_message_bytes = 512;  // below one 768-byte image
  ASSERT_NO_FATAL_FAILURE(StartServer(options));
  inference::ModelInferResponse resp;
  EXPECT_EQ(Infer(MakeRequest("tiny", RandomImage(11)), &resp).error_code(),
            grpc::StatusCode::RESOURCE_EXHAUSTED);
}

}  // namespace
}  // namespace vtaserve::server
