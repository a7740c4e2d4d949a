// The real server in-process on 127.0.0.1 with TLS and mutual TLS. A
// throwaway CA, a server certificate (SAN IP:127.0.0.1, DNS:localhost) and
// client certificates are made at test time with the openssl command line.
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "engine/reference_backend.h"
#include "gmock/gmock.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "gtest/gtest.h"
#include "proto/inference.grpc.pb.h"
#include "server/server.h"
#include "tests/integration/test_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_graphs.h"

namespace vtaserve::server {
namespace {

using ::testing::HasSubstr;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;
using ::vtaserve::testing::TinyClassifier;

namespace fs = std::filesystem;

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}

void WriteFile(const fs::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// Runs one openssl command in `dir`; false (with the log in `error`) on
// failure.
bool Openssl(const fs::path& dir, const std::string& args, std::string* error) {
  const fs::path log = dir / "openssl.log";
  const std::string command =
      absl::StrCat("cd '", dir.string(), "' && openssl ", args, " >'",
                   log.string(), "' 2>&1");
  if (std::system(command.c_str()) == 0) return true;
  *error = absl::StrCat("openssl ", args, "\n", ReadFile(log));
  return false;
}

// PEM material made once for the suite.
struct Pki {
  fs::path dir;
  std::string ca;           // CA certificate
  std::string client_cert;  // signed by the CA, clientAuth
  std::string client_key;
  std::string rogue_cert;  // client certificate of an unrelated CA
  std::string rogue_key;
};

// Makes a CA (name `ca`), and `ca`-signed leaf certificates.
bool MakeCa(const fs::path& dir, const std::string& ca, std::string* error) {
  return Openssl(dir,
                 absl::StrCat("req -x509 -newkey ec -pkeyopt "
                              "ec_paramgen_curve:prime256v1 -nodes -days 2 "
                              "-subj /CN=vtaserve-test-",
                              ca, " -keyout ", ca, ".key -out ", ca, ".pem"),
                 error);
}

bool MakeLeaf(const fs::path& dir, const std::string& ca,
              const std::string& name, const std::string& extensions,
              std::string* error) {
  WriteFile(dir / (name + ".ext"), extensions);
  return Openssl(
             dir,
             absl::StrCat("req -newkey ec -pkeyopt "
                          "ec_paramgen_curve:prime256v1 -nodes -subj /CN=",
                          name, " -keyout ", name, ".key -out ", name, ".csr"),
             error) &&
         Openssl(dir,
                 absl::StrCat("x509 -req -days 2 -in ", name, ".csr -CA ", ca,
                              ".pem -CAkey ", ca, ".key -CAcreateserial -out ",
                              name, ".pem -extfile ", name, ".ext"),
                 error);
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new Pki;
    pki_->dir = testing::FreshDir("tls_pki");
    const fs::path& d = pki_->dir;
    std::string error;
    const std::string server_ext =
        "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
        "extendedKeyUsage=serverAuth\n";
    const std::string client_ext = "extendedKeyUsage=clientAuth\n";
    const bool ok = MakeCa(d, "ca", &error) && MakeCa(d, "rogue_ca", &error) &&
                    MakeLeaf(d, "ca", "server", server_ext, &error) &&
                    MakeLeaf(d, "ca", "client", client_ext, &error) &&
                    MakeLeaf(d, "rogue_ca", "rogue", client_ext, &error);
    if (!ok) {
      pki_error_ = new std::string(error);
      return;
    }
    pki_->ca = ReadFile(d / "ca.pem");
    pki_->client_cert = ReadFile(d / "client.pem");
    pki_->client_key = ReadFile(d / "client.key");
    pki_->rogue_cert = ReadFile(d / "rogue.pem");
    pki_->rogue_key = ReadFile(d / "rogue.key");
  }

  static void TearDownTestSuite() {
    delete pki_;
    pki_ = nullptr;
    delete pki_error_;
    pki_error_ = nullptr;
  }

  void SetUp() override {
    ASSERT_EQ(pki_error_, nullptr) << *pki_error_;
    ASSERT_THAT(registry_.Register(engine::CreateReferenceBackend()), IsOk());
    repo_ = testing::FreshDir(absl::StrCat(
        "tls_repo_",
        ::testing::UnitTest::GetInstance()->current_test_info()->name()));
    testing::WriteModel(repo_, "tiny", 1, "tiny", "");
  }

  void TearDown() override {
    if (server_) server_->Shutdown(absl::Seconds(5));
  }

  static std::string Path(const std::string& file) {
    return (pki_->dir / file).string();
  }

  // Options for the suite's server certificate; `client_ca` turns on
  // mutual TLS.
  static ServerOptions TlsOptions(bool client_ca) {
    ServerOptions options;
    options.tls_cert = Path("server.pem");
    options.tls_key = Path("server.key");
    if (client_ca) options.tls_client_ca = Path("ca.pem");
    return options;
  }

  absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options) {
    options.model_repository = repo_.string();
    options.grpc_address = "127.0.0.1";
    options.grpc_port = 0;
    options.metrics_port = -1;
    return Server::Start(
        options, &registry_,
        [](const std::string& path,
           const engine::ModelConfig&) -> absl::StatusOr<engine::ModelGraph> {
          if (ReadFile(path) == "tiny") return TinyClassifier();
          return absl::InvalidArgumentError("not a test model");
        });
  }

  void StartServer(ServerOptions options) {
    auto server = Start(std::move(options));
    ASSERT_THAT(server, IsOk());
    server_ = *std::move(server);
  }

  std::unique_ptr<inference::GRPCInferenceService::Stub> Stub(
      std::shared_ptr<grpc::ChannelCredentials> credentials,
      const std::string& host = "127.0.0.1") {
    return inference::GRPCInferenceService::NewStub(grpc::CreateChannel(
        absl::StrCat(host, ":", server_->grpc_port()), credentials));
  }

  // TLS credentials trusting the suite CA, with an optional client pair.
  static std::shared_ptr<grpc::ChannelCredentials> TlsCredentials(
      const std::string& cert = "", const std::string& key = "") {
    grpc::SslCredentialsOptions ssl;
    ssl.pem_root_certs = pki_->ca;
    ssl.pem_cert_chain = cert;
    ssl.pem_private_key = key;
    return grpc::SslCredentials(ssl);
  }

  static grpc::Status Live(inference::GRPCInferenceService::Stub& stub,
                           bool* live = nullptr) {
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(10)));
    inference::ServerLiveResponse response;
    grpc::Status s = stub.ServerLive(&context, {}, &response);
    if (live != nullptr) *live = response.live();
    return s;
  }

  // One ModelInfer on "tiny"; the output must be a 10-class distribution.
  static void ExpectInferWorks(inference::GRPCInferenceService::Stub& stub) {
    inference::ModelInferRequest request;
    request.set_model_name("tiny");
    auto* in = request.add_inputs();
    in->set_name("input");
    in->set_datatype("FP32");
    for (int64_t d : {1, 3, 8, 8}) in->add_shape(d);
    std::vector<float> image(3 * 8 * 8);
    for (size_t i = 0; i < image.size(); ++i) {
      image[i] = static_cast<float>(i % 17) / 8.0f - 1.0f;
    }
    request.add_raw_input_contents(
        std::string(reinterpret_cast<const char*>(image.data()),
                    image.size() * sizeof(float)));
    grpc::ClientContext context;
    context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
    inference::ModelInferResponse response;
    grpc::Status s = stub.ModelInfer(&context, request, &response);
    ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
    ASSERT_EQ(response.raw_output_contents_size(), 1);
    const std::string& out = response.raw_output_contents(0);
    ASSERT_EQ(out.size(), 10 * sizeof(float));
    float sum = 0.0f;
    for (int i = 0; i < 10; ++i) {
      float p;
      std::memcpy(&p, out.data() + i * sizeof(float), sizeof(float));
      EXPECT_GE(p, 0.0f);
      sum += p;
    }
    EXPECT_NEAR(sum, 1.0f, 1e-3f);
  }

  static Pki* pki_;
  static std::string* pki_error_;
  engine::BackendRegistry registry_;
  fs::path repo_;
  std::unique_ptr<Server> server_;
};

Pki* TlsTest::pki_ = nullptr;
std::string* TlsTest::pki_error_ = nullptr;

TEST_F(TlsTest, TrustedClientCallsServerLiveAndModelInfer) {
  ASSERT_NO_FATAL_FAILURE(StartServer(TlsOptions(/*client_ca=*/false)));
  auto stub = Stub(TlsCredentials());
  bool live = false;
  grpc::Status s = Live(*stub, &live);
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  EXPECT_TRUE(live);

  grpc::ClientContext context;
  inference::ModelReadyRequest ready_request;
  ready_request.set_name("tiny");
  inference::ModelReadyResponse ready;
  ASSERT_TRUE(stub->ModelReady(&context, ready_request, &ready).ok());
  EXPECT_TRUE(ready.ready());
  ASSERT_NO_FATAL_FAILURE(ExpectInferWorks(*stub));
}

TEST_F(TlsTest, CertificateNamesLocalhost) {
  ASSERT_NO_FATAL_FAILURE(StartServer(TlsOptions(/*client_ca=*/false)));
  auto stub = Stub(TlsCredentials(), "localhost");
  grpc::Status s = Live(*stub);
  EXPECT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
}

TEST_F(TlsTest, PlaintextClientIsUnavailable) {
  ASSERT_NO_FATAL_FAILURE(StartServer(TlsOptions(/*client_ca=*/false)));
  auto stub = Stub(grpc::InsecureChannelCredentials());
  EXPECT_EQ(Live(*stub).error_code(), grpc::StatusCode::UNAVAILABLE);
  // The TLS port still serves TLS clients afterwards.
  auto tls = Stub(TlsCredentials());
  EXPECT_TRUE(Live(*tls).ok());
}

TEST_F(TlsTest, ClientNotTrustingTheCaIsUnavailable) {
  ASSERT_NO_FATAL_FAILURE(StartServer(TlsOptions(/*client_ca=*/false)));
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ReadFile(pki_->dir / "rogue_ca.pem");
  auto stub = Stub(grpc::SslCredentials(ssl));
  EXPECT_EQ(Live(*stub).error_code(), grpc::StatusCode::UNAVAILABLE);
}

TEST_F(TlsTest, MutualTlsRequiresClientCertificate) {
  ASSERT_NO_FATAL_FAILURE(StartServer(TlsOptions(/*client_ca=*/true)));
  auto without = Stub(TlsCredentials());
  EXPECT_EQ(Live(*without).error_code(), grpc::StatusCode::UNAVAILABLE);

  auto rogue = Stub(TlsCredentials(pki_->rogue_cert, pki_->rogue_key));
  EXPECT_EQ(Live(*rogue).error_code(), grpc::StatusCode::UNAVAILABLE);

  auto plaintext = Stub(grpc::InsecureChannelCredentials());
  EXPECT_EQ(Live(*plaintext).error_code(), grpc::StatusCode::UNAVAILABLE);

  auto with = Stub(TlsCredentials(pki_->client_cert, pki_->client_key));
  bool live = false;
  grpc::Status s = Live(*with, &live);
  ASSERT_TRUE(s.ok()) << s.error_code() << ": " << s.error_message();
  EXPECT_TRUE(live);
  ASSERT_NO_FATAL_FAILURE(ExpectInferWorks(*with));
}

TEST_F(TlsTest, MissingTlsFilesFailStart) {
  ServerOptions options = TlsOptions(/*client_ca=*/false);
  options.tls_key = Path("no_such.key");
  EXPECT_THAT(Start(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("--tls-key: cannot read")));

  options = TlsOptions(/*client_ca=*/false);
  options.tls_cert = Path("no_such.pem");
  EXPECT_THAT(Start(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("--tls-cert: cannot read")));

  options = TlsOptions(/*client_ca=*/true);
  options.tls_client_ca = Path("no_such_ca.pem");
  EXPECT_THAT(Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("--tls-client-ca: cannot read")));

  options = TlsOptions(/*client_ca=*/false);
  options.tls_key.clear();
  EXPECT_THAT(Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("both --tls-cert and --tls-key")));

  options = ServerOptions{};
  options.tls_client_ca = Path("ca.pem");
  EXPECT_THAT(Start(options),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("both --tls-cert and --tls-key")));
}

TEST_F(TlsTest, GarbagePemFailsStart) {
  const fs::path garbage = pki_->dir / "garbage.pem";
  WriteFile(garbage,
            "-----BEGIN PRIVATE KEY-----\nnot base64 at all\n"
            "-----END PRIVATE KEY-----\n");
  ServerOptions options = TlsOptions(/*client_ca=*/false);
  options.tls_key = garbage.string();
  EXPECT_THAT(Start(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("--tls-key")));

  options = TlsOptions(/*client_ca=*/false);
  options.tls_cert = garbage.string();
  EXPECT_THAT(Start(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("--tls-cert")));

  // A key that does not belong to the certificate.
  options = TlsOptions(/*client_ca=*/false);
  options.tls_key = Path("client.key");
  EXPECT_THAT(Start(options), StatusIs(absl::StatusCode::kInvalidArgument));

  options = TlsOptions(/*client_ca=*/true);
  options.tls_client_ca = garbage.string();
  EXPECT_THAT(Start(options), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("--tls-client-ca")));
}

}  // namespace
}  // namespace vtaserve::server
