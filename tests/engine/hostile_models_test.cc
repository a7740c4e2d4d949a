// Hostile model files at load (issue 12, section 5): truncated and corrupt
// ONNX files, an initializer claiming 10^12 elements, a 2^40 dimension, a
// graph of 100,000 nodes, and config.pbtxt files with unknown fields or
// absurd values, all in one repository beside a good model. Each is refused
// with a message naming the problem, and the good model keeps answering.
// Memory stays bounded because nothing is allocated from a claimed size:
// the importer checks every initializer's element count against its data
// before decoding (and shapes against 2^24 per dimension and 2^28 elements),
// refuses graphs above 20,000 nodes before walking them, and config values
// are range-checked (engine/model_config.cc).
#include <sys/resource.h>

#include <filesystem>
#include <fstream>
#include <string>

#include "absl/synchronization/notification.h"
#include "engine/backend_registry.h"
#include "engine/model_manager.h"
#include "engine/onnx/onnx_importer.h"
#include "engine/reference_backend.h"
#include "engine/zoo/resnet_generator.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::engine {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

long PeakRssKib() {
  rusage usage;
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_maxrss;
}

onnx::ModelProto GoodModel() {
  zoo::ConvSpec spec;
  spec.in_channels = 3;
  spec.out_channels = 4;
  spec.input_h = spec.input_w = 8;
  spec.kernel = 3;
  spec.stride = 1;
  spec.pad = 1;
  auto model = zoo::GenerateConv(spec);
  EXPECT_THAT(model.status(), IsOk());
  return model.ok() ? *model : onnx::ModelProto();
}

class HostileModelsTest : public ::testing::Test {
 protected:
  HostileModelsTest() : repo_(fs::path(::testing::TempDir()) / "hostile_repo") {
    fs::remove_all(repo_);
    fs::create_directories(repo_);
    EXPECT_THAT(registry_.Register(CreateReferenceBackend()), IsOk());
  }

  void AddModel(const std::string& name, const std::string& bytes,
                const std::string& config = "") {
    fs::create_directories(repo_ / name / "1");
    std::ofstream(repo_ / name / "1" / "model.onnx", std::ios::binary) << bytes;
    if (!config.empty()) std::ofstream(repo_ / name / "config.pbtxt") << config;
  }

  std::unique_ptr<ModelManager> Make() {
    ModelManagerOptions options;
    options.repository = repo_.string();
    return std::make_unique<ModelManager>(
        options, &registry_, [](const std::string& path, const ModelConfig&) {
          return ImportOnnxFile(path, ImportOptions{});
        });
  }

  // Runs the good model once; returns the job's status.
  absl::Status Infer(ModelManager& m, const std::string& name) {
    absl::Notification done;
    absl::Status result;
    std::vector<int64_t> shape;
    absl::Status submitted =
        m.Submit(name, "", [&](const std::shared_ptr<const ModelInfo>& info) {
          InferJob job;
          job.inputs.push_back(
              *Tensor::Create(info->inputs[0].dtype, info->inputs[0].shape));
          job.done = [&](InferResult r) {
            result = r.status;
            if (r.status.ok()) shape = r.outputs[0].shape();
            done.Notify();
          };
          return absl::StatusOr<InferJob>(std::move(job));
        });
    if (!submitted.ok()) return submitted;
    done.WaitForNotification();
    if (result.ok() && shape != std::vector<int64_t>{1, 4, 8, 8}) {
      return absl::InternalError("wrong output shape");
    }
    return result;
  }

  // The reason the index gives for `name`.
  static std::string Reason(const ModelManager& m, const std::string& name) {
    for (const ModelState& row : m.Index()) {
      if (row.name == name) {
        EXPECT_EQ(row.state, ModelState::State::kUnavailable) << name;
        return row.reason;
      }
    }
    ADD_FAILURE() << "no index row for " << name;
    return "";
  }

  BackendRegistry registry_;
  fs::path repo_;
};

TEST_F(HostileModelsTest, EachIsRefusedByNameAndTheGoodModelServes) {
  const onnx::ModelProto good = GoodModel();
  const std::string good_bytes = good.SerializeAsString();
  ASSERT_GT(good_bytes.size(), 100u);
  AddModel("good", good_bytes);

  AddModel("truncated", good_bytes.substr(0, good_bytes.size() / 2));
  AddModel("corrupt", std::string(4096, '\xff'));

  // An initializer that claims 10^6 x 10^6 = 10^12 elements, with 4 bytes.
  onnx::ModelProto huge_init = good;
  {
    auto* t = huge_init.mutable_graph()->add_initializer();
    t->set_name("huge");
    t->set_data_type(onnx::TensorProto::INT8);
    t->add_dims(1000000);
    t->add_dims(1000000);
    t->set_raw_data("abcd");
  }
  AddModel("huge_initializer", huge_init.SerializeAsString());

  // A weight whose element count (a legal shape) disagrees with its data:
  // checked before the importer allocates the claimed 4 M values.
  onnx::ModelProto short_weight = good;
  for (auto& t : *short_weight.mutable_graph()->mutable_initializer()) {
    if (t.dims_size() == 4) {
      t.set_dims(0, 1 << 22);
      break;
    }
  }
  AddModel("short_weight", short_weight.SerializeAsString());

  // A graph input with 2^40 in a dimension.
  onnx::ModelProto huge_dim = good;
  huge_dim.mutable_graph()
      ->mutable_input(0)
      ->mutable_type()
      ->mutable_tensor_type()
      ->mutable_shape()
      ->mutable_dim(2)
      ->set_dim_value(int64_t{1} << 40);
  AddModel("huge_dim", huge_dim.SerializeAsString());

  // 100,000 nodes.
  onnx::ModelProto many = good;
  for (int i = 0; i < 100000; ++i) {
    auto* n = many.mutable_graph()->add_node();
    n->set_op_type("Identity");
    n->add_input(i == 0 ? "output" : "id" + std::to_string(i - 1));
    n->add_output("id" + std::to_string(i));
  }
  AddModel("many_nodes", many.SerializeAsString());

  // Configs with unknown fields and absurd values.
  AddModel("cfg_unknown", good_bytes,
           "max_batch_size: 1\nfavourite_colour: 3\n");
  AddModel("cfg_queue", good_bytes, "max_queue_size: 2147483648\n");
  AddModel("cfg_queue_big", good_bytes, "max_queue_size: 2000000000\n");
  AddModel("cfg_exec", good_bytes, "concurrent_executions: 1000000\n");
  AddModel("cfg_threads", good_bytes, "cpu_threads: -5\n");
  AddModel("cfg_batch", good_bytes, "max_batch_size: 1000000000\n");
  AddModel("cfg_dims", good_bytes,
           "input { name: \"input\" dims: [3, 1099511627776, 8] }\n");

  auto m = Make();
  const long peak_before_kib = PeakRssKib();
  absl::Status all = m->LoadAll();
  // Nothing was allocated from a claimed size: the process peak grew by
  // less than 256 MiB (short_weight alone used to allocate 900 MB of
  // decoded values before its size was checked).
  EXPECT_LT(PeakRssKib() - peak_before_kib, 256 * 1024);
  EXPECT_THAT(all, StatusIs(absl::StatusCode::kInvalidArgument,
                            HasSubstr("13 of 14 models failed")));

  EXPECT_THAT(Reason(*m, "truncated"), HasSubstr("corrupt or truncated"));
  EXPECT_THAT(Reason(*m, "corrupt"), HasSubstr("corrupt or truncated"));
  EXPECT_THAT(Reason(*m, "huge_initializer"),
              HasSubstr("initializer 'huge': shape [1000000,1000000] is too "
                        "large"));
  EXPECT_THAT(Reason(*m, "short_weight"), HasSubstr("(truncated or corrupt)"));
  EXPECT_THAT(Reason(*m, "huge_dim"), HasSubstr("bad dimension 1099511627776"));
  EXPECT_THAT(Reason(*m, "many_nodes"),
              HasSubstr("graph has 100001 nodes (at most 20000)"));
  EXPECT_THAT(Reason(*m, "cfg_unknown"), HasSubstr("favourite_colour"));
  EXPECT_THAT(Reason(*m, "cfg_queue"), HasSubstr("line 1"));
  EXPECT_THAT(Reason(*m, "cfg_queue_big"), HasSubstr("max_queue_size"));
  EXPECT_THAT(Reason(*m, "cfg_exec"), HasSubstr("concurrent_executions"));
  EXPECT_THAT(Reason(*m, "cfg_threads"), HasSubstr("cpu_threads"));
  EXPECT_THAT(Reason(*m, "cfg_batch"), HasSubstr("max_batch_size"));
  EXPECT_THAT(Reason(*m, "cfg_dims"), HasSubstr("input"));

  // The good model serves, before and after the others are retried.
  EXPECT_THAT(Infer(*m, "good"), IsOk());
  EXPECT_THAT(m->Load("huge_initializer"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(m->Load("many_nodes"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Infer(*m, "good"), IsOk());
  EXPECT_THAT(Infer(*m, "truncated"), StatusIs(absl::StatusCode::kNotFound));
}

}  // namespace
}  // namespace vtaserve::engine
