// Load, drain and overload on the real vtaserve binary on 127.0.0.1, with
// the generated int8 ResNet-18 (224x224) and real gRPC clients, one TCP
// connection each:
//  - Load: N clients for T seconds, CPU placement and the default placement:
//    0 errors, resident set after warm-up flat within 5%; p50/p99 and
//    throughput printed (and one JSON line, also appended to
//    $VTASERVE_RELIABILITY_JSON when set).
//  - Drain: SIGTERM under 16-client load; every request is accounted for:
//    the ones sent well before the signal complete OK, later ones end OK or
//    UNAVAILABLE (never CANCELLED), and the server exits 0 within
//    --exit-timeout-secs.
//  - Overload: a full queue answers RESOURCE_EXHAUSTED and an expired
//    deadline DEADLINE_EXCEEDED, looped; the resident set must not grow
//    and the server must still answer after it.
// Sizes come from the environment (ctest sets the short CI versions and the
// `soak` ones): VTASERVE_LOAD_SECONDS (15), VTASERVE_LOAD_CLIENTS (64),
// VTASERVE_OVERLOAD_ITERATIONS (1000).
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
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

constexpr int kImageSize = 224;
constexpr absl::Duration kStartTimeout = absl::Seconds(180);

// Prints `line` and appends it to $VTASERVE_RELIABILITY_JSON.
void Report(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
  if (const char* path = std::getenv("VTASERVE_RELIABILITY_JSON");
      path != nullptr && *path != '\0') {
    std::ofstream(path, std::ios::app) << line << "\n";
  }
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = std::min(v.size() - 1, static_cast<size_t>(q * v.size()));
  return v[i];
}

class LoadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = FreshDir(
        ::testing::UnitTest::GetInstance()->current_test_info()->name());
  }

  // vtaserve on a repository with ResNet-18 as "resnet18" under `config`.
  void StartServer(const std::string& config,
                   std::vector<std::string> extra = {}) {
    const std::filesystem::path repo = dir_ / "repo";
    ASSERT_THAT(WriteResNet18(repo, "resnet18", kImageSize, 1000, config),
                IsOk());
    std::vector<std::string> args = {"--model-repository=" + repo.string(),
                                     "--grpc-port=0", "--metrics-port=-1"};
    args.insert(args.end(), extra.begin(), extra.end());
    // glibc's malloc grows a heap per thread and raises its mmap threshold
    // as large blocks (the 602 KB inputs) are freed, so the resident set of
    // a server without any leak climbs for tens of seconds (measured: +15%
    // over 45 s at 64 clients, then flat). Fixed settings end that warm-up
    // early, so what the checks below see is a leak, not the allocator.
    auto p = ServerProcess::Start(
        ServerBinary(), args, dir_ / "server.log",
        {"MALLOC_ARENA_MAX=2", "MALLOC_MMAP_THRESHOLD_=131072"});
    ASSERT_THAT(p, IsOk());
    server_ = *std::move(p);
    ASSERT_THAT(server_->AwaitServing(kStartTimeout), IsOk());
    auto stub = NewStub(server_->grpc_port());
    ASSERT_THAT(AwaitReady(*stub, kStartTimeout), IsOk()) << server_->Log();
  }

  std::filesystem::path dir_;
  std::unique_ptr<ServerProcess> server_;
};

// N clients for T seconds; 0 errors and a flat resident set.
void RunLoad(LoadTest* t, ServerProcess& server, const std::string& label) {
  const int seconds = EnvInt("VTASERVE_LOAD_SECONDS", 15);
  const int clients = EnvInt("VTASERVE_LOAD_CLIENTS", 64);
  // Warm-up: every client has had its first answer and the allocators have
  // reached their working size.
  const absl::Duration warmup = absl::Seconds(std::max(10, seconds / 3));
  const absl::Time start = absl::Now();
  const absl::Time end = start + absl::Seconds(seconds);
  std::mutex mu;
  std::vector<double> latencies_ms;  // after warm-up
  std::atomic<int64_t> ok{0}, errors{0}, ok_after_warmup{0};
  std::string first_error;
  const inference::ModelInferRequest request =
      ImageRequest("resnet18", kImageSize, 7);
  std::vector<std::thread> threads;
  for (int c = 0; c < clients; ++c) {
    threads.emplace_back([&] {
      auto stub = NewStub(server.grpc_port());
      std::vector<double> mine;
      while (absl::Now() < end) {
        grpc::ClientContext context;
        context.set_deadline(
            absl::ToChronoTime(absl::Now() + absl::Seconds(120)));
        inference::ModelInferResponse response;
        const absl::Time sent = absl::Now();
        grpc::Status s = stub->ModelInfer(&context, request, &response);
        const absl::Time done = absl::Now();
        if (s.ok() && response.raw_output_contents_size() == 1) {
          ok++;
          if (sent >= start + warmup) {
            ok_after_warmup++;
            mine.push_back(absl::ToDoubleMilliseconds(done - sent));
          }
        } else {
          errors++;
          std::lock_guard<std::mutex> lock(mu);
          if (first_error.empty()) {
            first_error = absl::StrCat(s.error_code(), ": ", s.error_message());
          }
        }
      }
      std::lock_guard<std::mutex> lock(mu);
      latencies_ms.insert(latencies_ms.end(), mine.begin(), mine.end());
    });
  }
  // Resident set every 250 ms after warm-up.
  std::vector<int64_t> rss;
  absl::SleepFor(warmup);
  while (absl::Now() < end) {
    absl::StatusOr<int64_t> kib = server.RssKib();
    if (kib.ok()) rss.push_back(*kib);
    absl::SleepFor(absl::Milliseconds(250));
  }
  for (std::thread& th : threads) th.join();
  const double measured = absl::ToDoubleSeconds(end - (start + warmup));
  ASSERT_FALSE(rss.empty());
  const int64_t rss_first = rss.front();
  const int64_t rss_max = *std::max_element(rss.begin(), rss.end());
  const int64_t rss_last = rss.back();
  std::string trace;  // one sample per second
  for (size_t i = 0; i < rss.size(); i += 4) {
    absl::StrAppend(&trace, trace.empty() ? "" : ",", rss[i]);
  }
  Report(absl::StrFormat(
      "{\"test\":\"load\",\"placement\":\"%s\",\"clients\":%d,"
      "\"seconds\":%d,\"ok\":%d,\"errors\":%d,\"throughput_per_s\":%.1f,"
      "\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"rss_kib_after_warmup\":%d,"
      "\"rss_kib_max\":%d,\"rss_kib_last\":%d,\"rss_kib_per_s\":[%s]}",
      label, clients, seconds, ok.load(), errors.load(),
      ok_after_warmup.load() / measured, Percentile(latencies_ms, 0.50),
      Percentile(latencies_ms, 0.99), rss_first, rss_max, rss_last, trace));
  EXPECT_EQ(errors.load(), 0) << first_error;
  EXPECT_GT(ok_after_warmup.load(), 0);
  EXPECT_LE(rss_max, rss_first * 105 / 100)
      << "resident set grew more than 5% after warm-up";
  EXPECT_TRUE(server.RssKib().ok()) << "the server died: " << server.Log();
}

TEST_F(LoadTest, CpuPlacementHoldsLoad) {
  ASSERT_NO_FATAL_FAILURE(StartServer(
      "max_batch_size: 1\nplacement: [\"cpu\"]\nmax_queue_size: 128\n"));
  ASSERT_NO_FATAL_FAILURE(RunLoad(this, *server_, "cpu"));
}

TEST_F(LoadTest, DefaultPlacementHoldsLoad) {
  ASSERT_NO_FATAL_FAILURE(
      StartServer("max_batch_size: 1\nmax_queue_size: 128\n"));
  ASSERT_NO_FATAL_FAILURE(RunLoad(this, *server_, "default"));
}

// One request's history, for the drain accounting.
struct Attempt {
  absl::Time sent;
  grpc::StatusCode code;
};

TEST_F(LoadTest, SigtermDrainsUnderLoad) {
  constexpr int kClients = 16;
  constexpr int kExitTimeoutSecs = 30;
  ASSERT_NO_FATAL_FAILURE(StartServer(
      "max_batch_size: 1\nplacement: [\"cpu\"]\nmax_queue_size: 64\n",
      {absl::StrCat("--exit-timeout-secs=", kExitTimeoutSecs)}));
  std::atomic<bool> exited{false};
  std::mutex mu;
  std::vector<Attempt> attempts;
  const inference::ModelInferRequest request =
      ImageRequest("resnet18", kImageSize, 8);
  std::vector<std::thread> threads;
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&] {
      auto stub = NewStub(server_->grpc_port());
      // Clients retry UNAVAILABLE until the server is gone (bounded: the
      // test sets `exited` within the exit timeout).
      while (!exited.load()) {
        grpc::ClientContext context;
        context.set_deadline(
            absl::ToChronoTime(absl::Now() + absl::Seconds(60)));
        inference::ModelInferResponse response;
        const absl::Time sent = absl::Now();
        grpc::Status s = stub->ModelInfer(&context, request, &response);
        std::lock_guard<std::mutex> lock(mu);
        attempts.push_back({sent, s.error_code()});
      }
    });
  }
  absl::SleepFor(absl::Seconds(3));
  const absl::Time signalled = absl::Now();
  server_->Signal(SIGTERM);
  absl::StatusOr<int> code =
      server_->Wait(absl::Seconds(kExitTimeoutSecs + 10));
  const absl::Time gone = absl::Now();
  exited = true;
  for (std::thread& th : threads) th.join();
  ASSERT_THAT(code, IsOk()) << server_->Log();
  EXPECT_EQ(*code, 0) << server_->Log();
  EXPECT_LE(gone - signalled, absl::Seconds(kExitTimeoutSecs));

  // Well before the signal (200 ms: the request reached the server) every
  // request must succeed; around and after it, OK or UNAVAILABLE only.
  const absl::Time surely_accepted = signalled - absl::Milliseconds(200);
  int before_ok = 0, before_other = 0, late_ok = 0, late_unavailable = 0,
      late_other = 0, cancelled = 0;
  std::string others;
  for (const Attempt& a : attempts) {
    if (a.code == grpc::StatusCode::CANCELLED) cancelled++;
    if (a.sent < surely_accepted) {
      (a.code == grpc::StatusCode::OK ? before_ok : before_other)++;
    } else if (a.code == grpc::StatusCode::OK) {
      late_ok++;
    } else if (a.code == grpc::StatusCode::UNAVAILABLE) {
      late_unavailable++;
    } else {
      late_other++;
    }
    if (a.code != grpc::StatusCode::OK &&
        a.code != grpc::StatusCode::UNAVAILABLE) {
      absl::StrAppend(&others, " ", a.code, "@",
                      absl::ToInt64Milliseconds(a.sent - signalled), "ms");
    }
  }
  Report(absl::StrFormat(
      "{\"test\":\"drain\",\"clients\":%d,\"requests\":%d,"
      "\"before_signal_ok\":%d,\"before_signal_failed\":%d,"
      "\"after_signal_ok\":%d,\"after_signal_unavailable\":%d,"
      "\"after_signal_other\":%d,\"cancelled\":%d,\"exit_code\":%d,"
      "\"exit_seconds\":%.3f}",
      kClients, static_cast<int>(attempts.size()), before_ok, before_other,
      late_ok, late_unavailable, late_other, cancelled, *code,
      absl::ToDoubleSeconds(gone - signalled)));
  EXPECT_GT(before_ok, 0);
  EXPECT_EQ(before_other, 0) << others;
  EXPECT_EQ(late_other, 0) << others;
  EXPECT_EQ(cancelled, 0) << others;
  EXPECT_GT(late_unavailable, 0) << "no request met the drain";
}

// Overload, looped: each iteration sends a burst at a model with one
// execution and a queue of one, so most of the burst is refused, and one
// request whose deadline expires while it waits. Counts every code; the
// resident set and thread count after the loop must match the ones after
// warm-up, and a plain request must still be served (no executor left
// stuck or leaked).
class OverloadTest : public LoadTest {};

TEST_F(OverloadTest, QueueFullAndDeadlinesLeakNothing) {
  const int iterations = EnvInt("VTASERVE_OVERLOAD_ITERATIONS", 1000);
  constexpr int kBurst = 6;
  ASSERT_NO_FATAL_FAILURE(
      StartServer("max_batch_size: 1\nplacement: [\"cpu\"]\nmax_queue_size: 1\n"
                  "concurrent_executions: 1\n"));
  auto stub = NewStub(server_->grpc_port());
  const inference::ModelInferRequest request =
      ImageRequest("resnet18", kImageSize, 9);
  int64_t ok = 0, exhausted = 0, deadline = 0, other = 0;
  std::string others;
  int64_t rss_warm = -1, threads_warm = -1;
  std::string trace;  // the resident set every tenth of the loop
  const absl::Time start = absl::Now();
  for (int i = 0; i < iterations; ++i) {
    if (i == iterations / 3) {
      VTASERVE_ASSERT_OK_AND_ASSIGN(rss_warm, server_->RssKib());
      VTASERVE_ASSERT_OK_AND_ASSIGN(threads_warm, server_->Threads());
    }
    if (i % std::max(1, iterations / 10) == 0) {
      absl::StatusOr<int64_t> kib = server_->RssKib();
      absl::StrAppend(&trace, trace.empty() ? "" : ",", kib.value_or(-1));
    }
    struct Call {
      grpc::ClientContext context;
      inference::ModelInferResponse response;
      grpc::Status status;
      absl::Notification done;
    };
    std::vector<std::unique_ptr<Call>> calls;
    for (int k = 0; k <= kBurst; ++k) {
      auto call = std::make_unique<Call>();
      // The last one expires while it waits behind the others.
      const absl::Duration timeout =
          k == kBurst ? absl::Milliseconds(2) : absl::Seconds(30);
      call->context.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
      Call* c = call.get();
      stub->async()->ModelInfer(&c->context, &request, &c->response,
                                [c](grpc::Status s) {
                                  c->status = std::move(s);
                                  c->done.Notify();
                                });
      calls.push_back(std::move(call));
    }
    for (auto& c : calls) {
      c->done.WaitForNotification();
      switch (c->status.error_code()) {
        case grpc::StatusCode::OK:
          ok++;
          break;
        case grpc::StatusCode::RESOURCE_EXHAUSTED:
          exhausted++;
          break;
        case grpc::StatusCode::DEADLINE_EXCEEDED:
          deadline++;
          break;
        default:
          if (other++ < 5) {
            absl::StrAppend(&others, " ", c->status.error_code(), ": ",
                            c->status.error_message());
          }
      }
    }
  }
  const double seconds = absl::ToDoubleSeconds(absl::Now() - start);
  // The server still serves a plain request promptly.
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(30)));
  inference::ModelInferResponse response;
  const grpc::Status after = stub->ModelInfer(&context, request, &response);
  VTASERVE_ASSERT_OK_AND_ASSIGN(const int64_t rss_end, server_->RssKib());
  VTASERVE_ASSERT_OK_AND_ASSIGN(const int64_t threads_end, server_->Threads());
  Report(absl::StrFormat(
      "{\"test\":\"overload\",\"iterations\":%d,\"requests\":%d,"
      "\"ok\":%d,\"resource_exhausted\":%d,\"deadline_exceeded\":%d,"
      "\"other\":%d,\"seconds\":%.1f,\"rss_kib_warm\":%d,"
      "\"rss_kib_end\":%d,\"threads_warm\":%d,\"threads_end\":%d,"
      "\"rss_kib_per_tenth\":[%s]}",
      iterations, iterations * (kBurst + 1), ok, exhausted, deadline, other,
      seconds, rss_warm, rss_end, threads_warm, threads_end, trace));
  EXPECT_EQ(other, 0) << others;
  EXPECT_GT(ok, 0);
  EXPECT_GT(exhausted, 0);
  EXPECT_GT(deadline, 0);
  EXPECT_TRUE(after.ok()) << after.error_message();
  EXPECT_LE(rss_end, rss_warm * 105 / 100)
      << "resident set grew more than 5% over the loop";
  EXPECT_LE(threads_end, threads_warm);
}

}  // namespace
}  // namespace vtaserve::testing
