#include "engine/scheduler.h"

#include <memory>
#include <vector>

#include "absl/synchronization/notification.h"
#include "engine/backend_registry.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_graphs.h"

namespace vtaserve::engine {
namespace {

using ::vtaserve::testing::Gate;
using ::vtaserve::testing::GatedBackend;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;
using ::vtaserve::testing::TinyClassifier;

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() : gate_(std::make_shared<Gate>()) {
    EXPECT_THAT(registry_.Register(std::make_unique<GatedBackend>(gate_)),
                IsOk());
  }

  std::unique_ptr<Scheduler> Make(int executions, int queue) {
    std::vector<std::unique_ptr<Executor>> executors;
    for (int i = 0; i < executions; ++i) {
      auto ex =
          Executor::Create(TinyClassifier(), registry_, PlacementOptions{});
      EXPECT_THAT(ex, IsOk());
      executors.push_back(*std::move(ex));
    }
    auto s = Scheduler::Create(SchedulerOptions{queue}, std::move(executors));
    EXPECT_THAT(s, IsOk());
    return *std::move(s);
  }

  // A job whose result lands in `out` and signals `done`.
  InferJob Job(InferResult* out, absl::Notification* done) {
    InferJob job;
    auto t = Tensor::Create(DataType::kFloat32, {1, 3, 8, 8});
    EXPECT_THAT(t, IsOk());
    job.inputs.push_back(*std::move(t));
    job.done = [out, done](InferResult r) {
      *out = std::move(r);
      done->Notify();
    };
    return job;
  }

  std::shared_ptr<Gate> gate_;
  BackendRegistry registry_;
};

TEST_F(SchedulerTest, RunsJobAndReportsProfile) {
  auto s = Make(1, 4);
  InferResult r;
  absl::Notification done;
  ASSERT_THAT(s->Submit(Job(&r, &done)), IsOk());
  done.WaitForNotification();
  ASSERT_THAT(r.status, IsOk());
  ASSERT_EQ(r.outputs.size(), 1u);
  EXPECT_EQ(r.outputs[0].shape(), (std::vector<int64_t>{1, 10}));
  EXPECT_EQ(r.profile.size(), 7u);
  EXPECT_TRUE(r.executed);
  EXPECT_EQ(s->stats().success_count, 1u);
}

TEST_F(SchedulerTest, FullQueueIsResourceExhausted) {
  auto s = Make(1, 1);
  gate_->Close();
  InferResult r1, r2;
  absl::Notification d1, d2;
  ASSERT_THAT(s->Submit(Job(&r1, &d1)), IsOk());
  ASSERT_TRUE(gate_->AwaitWaiting(1));            // running, held at the gate
  ASSERT_THAT(s->Submit(Job(&r2, &d2)), IsOk());  // waits in the queue
  InferResult r3;
  absl::Notification d3;
  EXPECT_THAT(s->Submit(Job(&r3, &d3)),
              StatusIs(absl::StatusCode::kResourceExhausted));
  EXPECT_EQ(s->InFlight(), 2);
  gate_->Open();
  d1.WaitForNotification();
  d2.WaitForNotification();
  EXPECT_THAT(r1.status, IsOk());
  EXPECT_THAT(r2.status, IsOk());
  EXPECT_FALSE(d3.HasBeenNotified());
}

TEST_F(SchedulerTest, ExpiredJobIsNotRun) {
  auto s = Make(1, 4);
  gate_->Close();
  InferResult r1, r2;
  absl::Notification d1, d2;
  ASSERT_THAT(s->Submit(Job(&r1, &d1)), IsOk());
  ASSERT_TRUE(gate_->AwaitWaiting(1));
  InferJob late = Job(&r2, &d2);
  late.deadline = absl::Now() + absl::Milliseconds(20);
  ASSERT_THAT(s->Submit(std::move(late)), IsOk());
  absl::SleepFor(absl::Milliseconds(40));
  gate_->Open();
  d2.WaitForNotification();
  EXPECT_THAT(r2.status, StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_FALSE(r2.executed);
  d1.WaitForNotification();
  EXPECT_EQ(gate_->started.load(), 1);
}

TEST_F(SchedulerTest, CancelStopsHeldExecution) {
  auto s = Make(1, 4);
  gate_->Close();
  InferResult r;
  absl::Notification d;
  InferJob job = Job(&r, &d);
  auto flag = std::make_shared<std::atomic<bool>>(false);
  job.cancelled = flag;
  ASSERT_THAT(s->Submit(std::move(job)), IsOk());
  ASSERT_TRUE(gate_->AwaitWaiting(1));
  flag->store(true);
  d.WaitForNotification();
  EXPECT_THAT(r.status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_EQ(s->stats().fail_count, 1u);
}

TEST_F(SchedulerTest, ShutdownDrainsAcceptedJobs) {
  auto s = Make(2, 8);
  gate_->Close();
  std::vector<InferResult> results(5);
  std::vector<absl::Notification> done(5);
  for (int i = 0; i < 5; ++i) {
    ASSERT_THAT(s->Submit(Job(&results[i], &done[i])), IsOk());
  }
  ASSERT_TRUE(gate_->AwaitWaiting(2));
  std::thread opener([this] {
    absl::SleepFor(absl::Milliseconds(50));
    gate_->Open();
  });
  s->Shutdown(absl::Now() + absl::Seconds(30));
  opener.join();
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(done[i].HasBeenNotified());
    EXPECT_THAT(results[i].status, IsOk());
  }
  InferResult r;
  absl::Notification d;
  EXPECT_THAT(s->Submit(Job(&r, &d)), StatusIs(absl::StatusCode::kUnavailable));
}

TEST_F(SchedulerTest, ShutdownPastDeadlineFailsQueuedAndCancelsRunning) {
  auto s = Make(1, 8);
  gate_->Close();
  std::vector<InferResult> results(3);
  std::vector<absl::Notification> done(3);
  for (int i = 0; i < 3; ++i) {
    ASSERT_THAT(s->Submit(Job(&results[i], &done[i])), IsOk());
  }
  ASSERT_TRUE(gate_->AwaitWaiting(1));
  s->Shutdown(absl::Now() + absl::Milliseconds(30));
  EXPECT_THAT(results[0].status, StatusIs(absl::StatusCode::kCancelled));
  EXPECT_THAT(results[1].status, StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(results[2].status, StatusIs(absl::StatusCode::kUnavailable));
  gate_->Open();
}

TEST(SchedulerCreateTest, RejectsNoExecutors) {
  EXPECT_THAT(Scheduler::Create(SchedulerOptions{}, {}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace vtaserve::engine
