#include "engine/model_manager.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/tiny_graphs.h"

namespace vtaserve::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::vtaserve::testing::Gate;
using ::vtaserve::testing::GatedBackend;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;
using ::vtaserve::testing::TinyClassifier;

class ModelManagerTest : public ::testing::Test {
 protected:
  ModelManagerTest()
      : gate_(std::make_shared<Gate>()),
        repo_(fs::path(::testing::TempDir()) /
              ::testing::UnitTest::GetInstance()->current_test_info()->name()) {
    fs::remove_all(repo_);
    fs::create_directories(repo_);
    EXPECT_THAT(registry_.Register(std::make_unique<GatedBackend>(gate_)),
                IsOk());
  }

  void AddModel(const std::string& name, int version,
                const std::string& config = "") {
    fs::create_directories(repo_ / name / std::to_string(version));
    std::ofstream(repo_ / name / std::to_string(version) / "model.onnx") << "x";
    if (!config.empty()) std::ofstream(repo_ / name / "config.pbtxt") << config;
  }

  std::unique_ptr<ModelManager> Make() {
    ModelManagerOptions options;
    options.repository = repo_.string();
    return std::make_unique<ModelManager>(
        options, &registry_,
        [this](const std::string& path,
               const ModelConfig&) -> absl::StatusOr<ModelGraph> {
          ++loads_;
          if (path.find("broken") != std::string::npos) {
            return absl::InvalidArgumentError("not an ONNX model");
          }
          return TinyClassifier();
        });
  }

  InferJob Job(absl::Notification* done, absl::Status* status) {
    InferJob job;
    job.inputs.push_back(*Tensor::Create(DataType::kFloat32, {1, 3, 8, 8}));
    job.done = [done, status](InferResult r) {
      *status = r.status;
      done->Notify();
    };
    return job;
  }

  std::shared_ptr<Gate> gate_;
  BackendRegistry registry_;
  fs::path repo_;
  int loads_ = 0;
};

TEST_F(ModelManagerTest, LoadsLatestVersionWithDefaults) {
  AddModel("tiny", 1);
  AddModel("tiny", 3);
  AddModel("tiny", 2);
  auto m = Make();
  ASSERT_THAT(m->LoadAll(), IsOk());
  VTASERVE_ASSERT_OK_AND_ASSIGN(auto info, m->Find("tiny", ""));
  EXPECT_EQ(info->version, 3);
  EXPECT_EQ(info->inputs[0].name, "input");
  EXPECT_EQ(info->outputs[0].name, "probabilities");
  EXPECT_EQ(info->placements.size(), 7u);
  EXPECT_EQ(info->placements[1].backend, "reference");
  EXPECT_THAT(m->Find("tiny", "3"), IsOk());
  EXPECT_THAT(m->Find("tiny", "1"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(m->Find("tiny", "x"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(m->Find("other", ""), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(m->AllReady());
}

TEST_F(ModelManagerTest, BadModelsFailWithoutStoppingOthers) {
  AddModel("good", 1);
  AddModel("badcfg", 1, "first_conv: \"nope\"");
  AddModel("broken", 1);
  fs::create_directories(repo_ / "noversion");
  AddModel("wrongio", 1, "input { name: \"pixels\" }");
  auto m = Make();
  absl::Status s = m->LoadAll();
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument,
                          HasSubstr("4 of 5 models failed")));
  EXPECT_THAT(s,
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("badcfg/config.pbtxt: field 'first_conv'")));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kInvalidArgument,
                          HasSubstr("no input 'pixels'")));
  EXPECT_THAT(m->Find("good", ""), IsOk());
  EXPECT_FALSE(m->AllReady());
  EXPECT_THAT(m->Load("badcfg"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(m->Load("noversion"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(m->Load("absent"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(m->Load("../etc"), StatusIs(absl::StatusCode::kInvalidArgument));
  bool saw_bad = false;
  for (const ModelState& row : m->Index()) {
    if (row.name == "badcfg") {
      saw_bad = true;
      EXPECT_EQ(row.state, ModelState::State::kUnavailable);
      EXPECT_THAT(row.reason, HasSubstr("first_conv"));
    }
  }
  EXPECT_TRUE(saw_bad);
}

TEST_F(ModelManagerTest, DeclaredTensorsMustMatchTheModel) {
  AddModel("tiny", 1,
           "max_batch_size: 8\n"
           "input { name: \"input\" data_type: TYPE_FP32 dims: [3, 8, 8] }\n"
           "output { name: \"probabilities\" dims: [10] }\n");
  auto m = Make();
  ASSERT_THAT(m->LoadAll(), IsOk());
  std::ofstream(repo_ / "tiny" / "config.pbtxt")
      << "input { name: \"input\" data_type: TYPE_UINT8 }\n";
  EXPECT_THAT(m->Load("tiny"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("declares UINT8 but the model has FP32")));
  std::ofstream(repo_ / "tiny" / "config.pbtxt")
      << "input { name: \"input\" dims: [1, 3, 9, 8] }\n";
  EXPECT_THAT(m->Load("tiny"), StatusIs(absl::StatusCode::kInvalidArgument,
                                        HasSubstr("declares dims")));
  // The failed reloads left the first version serving.
  EXPECT_THAT(m->Find("tiny", "1"), IsOk());
}

TEST_F(ModelManagerTest, ReloadKeepsAcceptedRequests) {
  AddModel("tiny", 1, "max_queue_size: 4");
  auto m = Make();
  ASSERT_THAT(m->LoadAll(), IsOk());
  gate_->Close();
  absl::Notification d1, d2;
  absl::Status s1, s2;
  auto submit = [&](absl::Notification* d, absl::Status* s) {
    return m->Submit("tiny", "", [&](const std::shared_ptr<const ModelInfo>&) {
      return absl::StatusOr<InferJob>(Job(d, s));
    });
  };
  ASSERT_THAT(submit(&d1, &s1), IsOk());
  ASSERT_THAT(submit(&d2, &s2), IsOk());
  ASSERT_TRUE(gate_->AwaitWaiting(1));
  AddModel("tiny", 2);
  absl::Notification reloaded;
  absl::Status reload_status;
  std::thread reload([&] {
    reload_status = m->Load("tiny");
    reloaded.Notify();
  });
  // The new version serves as soon as it is swapped in, while the old one
  // still holds the accepted requests.
  for (int i = 0; i < 2000 && !m->Find("tiny", "2").ok(); ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_THAT(m->Find("tiny", "2"), IsOk());
  EXPECT_FALSE(reloaded.HasBeenNotified());
  gate_->Open();
  reload.join();
  EXPECT_THAT(reload_status, IsOk());
  EXPECT_THAT(s1, IsOk());
  EXPECT_THAT(s2, IsOk());
}

TEST_F(ModelManagerTest, UnloadAndShutdown) {
  AddModel("tiny", 1);
  auto m = Make();
  ASSERT_THAT(m->LoadAll(), IsOk());
  ASSERT_THAT(m->Unload("tiny"), IsOk());
  EXPECT_THAT(m->Find("tiny", ""), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(m->Unload("tiny"), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_TRUE(m->AllReady());
  ASSERT_THAT(m->Load("tiny"), IsOk());
  m->Shutdown(absl::Now() + absl::Seconds(1));
  absl::Notification d;
  absl::Status s;
  EXPECT_THAT(m->Submit("tiny", "",
                        [&](const std::shared_ptr<const ModelInfo>&) {
                          return absl::StatusOr<InferJob>(Job(&d, &s));
                        }),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_FALSE(m->AllReady());
}

}  // namespace
}  // namespace vtaserve::engine
