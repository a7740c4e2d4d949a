// vtaserve-client: a command-line client for any KServe v2 gRPC server.
//   vtaserve-client health   [--server=H:P] [--service=NAME]
//   vtaserve-client metadata [--server=H:P] --model=M
//   vtaserve-client infer    [--server=H:P] --model=M [--image=FILE.png|jpg]
//                            [--timing] [--version=V]
//   vtaserve-client load     [--server=H:P] --model=M [--concurrency=4]
//                            [--duration-secs=10]
// TLS: --tls-ca=PEM [--tls-cert=PEM --tls-key=PEM].
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "proto/health.grpc.pb.h"
#include "proto/inference.grpc.pb.h"
#include "tools/vtaserve-client/image.h"

namespace {

using Flags = std::map<std::string, std::string>;

std::string Flag(const Flags& flags, const std::string& name,
                 const std::string& fallback = "") {
  auto it = flags.find(name);
  return it == flags.end() ? fallback : it->second;
}

int IntFlag(const Flags& flags, const std::string& name, int fallback) {
  int v = fallback;
  const std::string s = Flag(flags, name);
  if (!s.empty() && !absl::SimpleAtoi(s, &v)) {
    std::fprintf(stderr, "--%s: not an integer: %s\n", name.c_str(), s.c_str());
    std::exit(2);
  }
  return v;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

std::shared_ptr<grpc::Channel> MakeChannel(const Flags& flags) {
  const std::string server = Flag(flags, "server", "localhost:8001");
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(64 << 20);
  if (Flag(flags, "tls-ca").empty()) {
    return grpc::CreateCustomChannel(server, grpc::InsecureChannelCredentials(),
                                     args);
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(Flag(flags, "tls-ca"));
  if (!Flag(flags, "tls-cert").empty()) {
    ssl.pem_cert_chain = ReadFile(Flag(flags, "tls-cert"));
    ssl.pem_private_key = ReadFile(Flag(flags, "tls-key"));
  }
  return grpc::CreateCustomChannel(server, grpc::SslCredentials(ssl), args);
}

int Fail(const grpc::Status& s, const char* what) {
  std::fprintf(stderr, "%s failed: code %d: %s\n", what,
               static_cast<int>(s.error_code()), s.error_message().c_str());
  return 1;
}

int Health(const Flags& flags) {
  auto stub = grpc::health::v1::Health::NewStub(MakeChannel(flags));
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(Flag(flags, "service"));
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status s = stub->Check(&context, request, &response);
  if (!s.ok()) return Fail(s, "health check");
  std::printf(
      "%s: %s\n",
      request.service().empty() ? "(server)" : request.service().c_str(),
      grpc::health::v1::HealthCheckResponse::ServingStatus_Name(
          response.status())
          .c_str());
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING
             ? 0
             : 3;
}

bool GetMetadata(inference::GRPCInferenceService::Stub& stub,
                 const Flags& flags, inference::ModelMetadataResponse* meta) {
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(10));
  inference::ModelMetadataRequest request;
  request.set_name(Flag(flags, "model"));
  request.set_version(Flag(flags, "version"));
  grpc::Status s = stub.ModelMetadata(&context, request, meta);
  if (!s.ok()) {
    Fail(s, "model metadata");
    return false;
  }
  return true;
}

int Metadata(const Flags& flags) {
  auto stub = inference::GRPCInferenceService::NewStub(MakeChannel(flags));
  inference::ModelMetadataResponse meta;
  if (!GetMetadata(*stub, flags, &meta)) return 1;
  std::printf("model %s versions [%s] platform %s\n", meta.name().c_str(),
              absl::StrJoin(meta.versions(), ",").c_str(),
              meta.platform().c_str());
  for (const auto& t : meta.inputs()) {
    std::printf("  input  %s %s [%s]\n", t.name().c_str(), t.datatype().c_str(),
                absl::StrJoin(t.shape(), ",").c_str());
  }
  for (const auto& t : meta.outputs()) {
    std::printf("  output %s %s [%s]\n", t.name().c_str(), t.datatype().c_str(),
                absl::StrJoin(t.shape(), ",").c_str());
  }
  return 0;
}

size_t DataTypeBytes(const std::string& dt) {
  if (dt == "FP32" || dt == "INT32") return 4;
  return 1;
}

// Builds a request for the model's single image input: from --image when
// given, else a random tensor.
bool BuildRequest(const inference::ModelMetadataResponse& meta,
                  const Flags& flags, uint32_t seed,
                  inference::ModelInferRequest* request) {
  if (meta.inputs_size() != 1) {
    std::fprintf(stderr, "model has %d inputs; only 1 is supported\n",
                 meta.inputs_size());
    return false;
  }
  const auto& in = meta.inputs(0);
  std::vector<int64_t> shape(in.shape().begin(), in.shape().end());
  for (int64_t& d : shape) d = d < 0 ? 1 : d;
  int64_t elements = 1;
  for (int64_t d : shape) elements *= d;
  request->set_model_name(meta.name());
  request->set_model_version(Flag(flags, "version"));
  auto* tensor = request->add_inputs();
  tensor->set_name(in.name());
  tensor->set_datatype(in.datatype());
  for (int64_t d : shape) tensor->add_shape(d);
  std::string bytes;
  const std::string image_path = Flag(flags, "image");
  if (!image_path.empty()) {
    if (shape.size() != 4 || shape[1] != 3) {
      std::fprintf(stderr, "input shape [%s] is not [N,3,H,W]\n",
                   absl::StrJoin(shape, ",").c_str());
      return false;
    }
    auto image = vtaserve::client::DecodeImage(image_path);
    if (!image.ok()) {
      std::fprintf(stderr, "%s\n", image.status().ToString().c_str());
      return false;
    }
    auto t = vtaserve::client::ToNchwTensor(
        vtaserve::client::Resize(*image, static_cast<int>(shape[3]),
                                 static_cast<int>(shape[2])),
        in.datatype());
    if (!t.ok()) {
      std::fprintf(stderr, "%s\n", t.status().ToString().c_str());
      return false;
    }
    bytes = *std::move(t);
  } else {
    std::mt19937 rng(seed);
    bytes.resize(elements * DataTypeBytes(in.datatype()));
    if (in.datatype() == "FP32") {
      std::normal_distribution<float> dist(0.0f, 1.0f);
      for (int64_t i = 0; i < elements; ++i) {
        const float v = dist(rng);
        std::memcpy(&bytes[i * 4], &v, 4);
      }
    } else {
      for (char& c : bytes) c = static_cast<char>(rng());
    }
  }
  request->add_raw_input_contents(bytes);
  if (flags.count("timing")) {
    (*request->mutable_parameters())["timing"].set_bool_param(true);
  }
  return true;
}

void PrintTop5(const inference::ModelInferResponse& response) {
  for (int o = 0;
       o < response.outputs_size() && o < response.raw_output_contents_size();
       ++o) {
    const auto& out = response.outputs(o);
    const std::string& raw = response.raw_output_contents(o);
    std::vector<float> values;
    if (out.datatype() == "FP32") {
      values.resize(raw.size() / 4);
      std::memcpy(values.data(), raw.data(), values.size() * 4);
    } else if (out.datatype() == "INT8") {
      for (char c : raw) values.push_back(static_cast<int8_t>(c));
    } else if (out.datatype() == "UINT8") {
      for (char c : raw) values.push_back(static_cast<uint8_t>(c));
    } else {
      continue;
    }
    std::vector<int> idx(values.size());
    for (size_t i = 0; i < idx.size(); ++i) idx[i] = static_cast<int>(i);
    const size_t k = std::min<size_t>(5, idx.size());
    std::partial_sort(idx.begin(), idx.begin() + k, idx.end(),
                      [&](int a, int b) { return values[a] > values[b]; });
    std::printf("%s top-%zu:\n", out.name().c_str(), k);
    for (size_t i = 0; i < k; ++i) {
      std::printf("  class %5d  %.6f\n", idx[i], values[idx[i]]);
    }
  }
}

int Infer(const Flags& flags) {
  auto stub = inference::GRPCInferenceService::NewStub(MakeChannel(flags));
  inference::ModelMetadataResponse meta;
  if (!GetMetadata(*stub, flags, &meta)) return 1;
  inference::ModelInferRequest request;
  if (!BuildRequest(meta, flags, 1, &request)) return 2;
  grpc::ClientContext context;
  context.set_deadline(std::chrono::system_clock::now() +
                       std::chrono::seconds(60));
  inference::ModelInferResponse response;
  const absl::Time start = absl::Now();
  grpc::Status s = stub->ModelInfer(&context, request, &response);
  const absl::Duration took = absl::Now() - start;
  if (!s.ok()) return Fail(s, "infer");
  PrintTop5(response);
  std::printf("latency %.3f ms (model %s version %s)\n",
              absl::ToDoubleMilliseconds(took), response.model_name().c_str(),
              response.model_version().c_str());
  if (!response.parameters().empty()) {
    std::map<std::string, std::string> sorted;
    for (const auto& [key, p] : response.parameters()) {
      sorted[key] = p.has_double_param()
                        ? absl::StrCat(p.double_param() * 1e3, " ms")
                        : p.string_param();
    }
    for (const auto& [key, value] : sorted) {
      std::printf("  %s: %s\n", key.c_str(), value.c_str());
    }
  }
  return 0;
}

int Load(const Flags& flags) {
  auto channel = MakeChannel(flags);
  auto stub = inference::GRPCInferenceService::NewStub(channel);
  inference::ModelMetadataResponse meta;
  if (!GetMetadata(*stub, flags, &meta)) return 1;
  const int concurrency = std::max(1, IntFlag(flags, "concurrency", 4));
  const int duration = std::max(1, IntFlag(flags, "duration-secs", 10));
  inference::ModelInferRequest request;
  if (!BuildRequest(meta, flags, 1, &request)) return 2;

  absl::Mutex mu;
  std::vector<double> latencies_ms;
  std::map<std::string, int> errors;
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(duration);
  std::vector<std::thread> threads;
  for (int c = 0; c < concurrency; ++c) {
    threads.emplace_back([&] {
      std::vector<double> mine;
      std::map<std::string, int> my_errors;
      while (absl::Now() < end) {
        grpc::ClientContext context;
        context.set_deadline(std::chrono::system_clock::now() +
                             std::chrono::seconds(60));
        inference::ModelInferResponse response;
        const absl::Time t0 = absl::Now();
        grpc::Status s = stub->ModelInfer(&context, request, &response);
        if (s.ok()) {
          mine.push_back(absl::ToDoubleMilliseconds(absl::Now() - t0));
        } else {
          my_errors[absl::StrCat("code ", static_cast<int>(s.error_code()))]++;
        }
      }
      absl::MutexLock lock(&mu);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
      for (const auto& [k, v] : my_errors) errors[k] += v;
    });
  }
  for (auto& t : threads) t.join();
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double p) {
    if (latencies_ms.empty()) return 0.0;
    const size_t i = std::min(latencies_ms.size() - 1,
                              static_cast<size_t>(p * latencies_ms.size()));
    return latencies_ms[i];
  };
  std::printf("model %s concurrency %d duration %.1f s\n", meta.name().c_str(),
              concurrency, seconds);
  std::printf("requests ok %zu, throughput %.1f infer/s\n", latencies_ms.size(),
              latencies_ms.size() / seconds);
  std::printf("latency ms p50 %.3f p90 %.3f p99 %.3f max %.3f\n", pct(0.50),
              pct(0.90), pct(0.99),
              latencies_ms.empty() ? 0.0 : latencies_ms.back());
  for (const auto& [k, v] : errors)
    std::printf("errors %s: %d\n", k.c_str(), v);
  return errors.empty() ? 0 : 1;
}

void Usage(std::FILE* out) {
  std::fprintf(
      out,
      "usage: vtaserve-client COMMAND [--flag=value ...]\n"
      "commands:\n"
      "  health    server liveness/readiness [--service=NAME]\n"
      "  metadata  a model's inputs and outputs --model=M\n"
      "  infer     one inference --model=M [--image=FILE.png|jpg] [--timing]\n"
      "            [--version=V] (no --image: a random input)\n"
      "  load      closed-loop load --model=M [--concurrency=4]\n"
      "            [--duration-secs=10]\n"
      "common flags:\n"
      "  --server=H:P  the server's gRPC address (default localhost:8001)\n"
      "  --tls-ca=PEM [--tls-cert=PEM --tls-key=PEM]  TLS (mutual with a "
      "client cert)\n"
      "  --help        this text\n"
      "exit codes: 0 success, 1 request failed, 2 usage error\n");
}

}  // namespace

int main(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h" || (i == 1 && a == "help")) {
      Usage(stdout);
      return 0;
    }
  }
  if (argc < 2) {
    Usage(stderr);
    return 2;
  }
  const std::string command = argv[1];
  Flags flags;
  for (int i = 2; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      std::fprintf(stderr, "unexpected argument '%s'\n", a.c_str());
      return 2;
    }
    a = a.substr(2);
    const size_t eq = a.find('=');
    if (eq == std::string::npos) {
      flags[a] = "true";
    } else {
      flags[a.substr(0, eq)] = a.substr(eq + 1);
    }
  }
  if (command == "health") return Health(flags);
  if (command != "metadata" && command != "infer" && command != "load") {
    std::fprintf(stderr, "unknown command '%s'\n", command.c_str());
    Usage(stderr);
    return 2;
  }
  if (Flag(flags, "model").empty()) {
    std::fprintf(stderr, "--model is required\n");
    return 2;
  }
  if (command == "metadata") return Metadata(flags);
  if (command == "infer") return Infer(flags);
  return Load(flags);
}
