#include "server/tensor_conversion.h"

#include <cstring>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve::server {
namespace {

using ::testing::HasSubstr;
using ::vtaserve::testing::StatusIs;

engine::ModelInfo TwoInputModel(int max_batch_size) {
  engine::ModelInfo info;
  info.name = "m";
  info.version = 1;
  info.config.max_batch_size = max_batch_size;
  info.inputs = {{"image", DataType::kUInt8, {1, 2, 2}, 1.0f, 0},
                 {"scale", DataType::kFloat32, {1, 3}, 1.0f, 0}};
  info.outputs = {{"a", DataType::kInt8, {1, 4}, 1.0f, 0},
                  {"b", DataType::kFloat32, {1, 2}, 1.0f, 0}};
  info.default_outputs = {0, 1};
  return info;
}

inference::ModelInferRequest RawRequest(int64_t batch = 1) {
  inference::ModelInferRequest r;
  auto* image = r.add_inputs();
  image->set_name("image");
  image->set_datatype("UINT8");
  for (int64_t d : {batch, int64_t{2}, int64_t{2}}) image->add_shape(d);
  auto* scale = r.add_inputs();
  scale->set_name("scale");
  scale->set_datatype("FP32");
  for (int64_t d : {batch, int64_t{3}}) scale->add_shape(d);
  r.add_raw_input_contents(std::string(4 * batch, '\x07'));
  r.add_raw_input_contents(std::string(12 * batch, '\0'));
  return r;
}

TEST(TensorConversionTest, BuildsRawInputsInGraphOrder) {
  inference::ModelInferRequest r = RawRequest();
  // Reverse the request order: tensors still come back in graph order.
  r.mutable_inputs()->SwapElements(0, 1);
  r.mutable_raw_input_contents()->SwapElements(0, 1);
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> t,
                                BuildInputs(TwoInputModel(0), r));
  ASSERT_EQ(t.size(), 2u);
  EXPECT_EQ(t[0].dtype(), DataType::kUInt8);
  EXPECT_EQ(t[0].data<uint8_t>()[3], 7);
  EXPECT_EQ(t[1].shape(), (std::vector<int64_t>{1, 3}));
}

TEST(TensorConversionTest, BuildsTypedInputs) {
  inference::ModelInferRequest r = RawRequest();
  r.clear_raw_input_contents();
  for (uint32_t v : {0u, 1u, 254u, 255u}) {
    r.mutable_inputs(0)->mutable_contents()->add_uint_contents(v);
  }
  for (float v : {0.5f, -1.0f, 2.0f}) {
    r.mutable_inputs(1)->mutable_contents()->add_fp32_contents(v);
  }
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> t,
                                BuildInputs(TwoInputModel(0), r));
  EXPECT_EQ(t[0].data<uint8_t>()[2], 254);
  EXPECT_EQ(t[1].data<float>()[1], -1.0f);
}

TEST(TensorConversionTest, AcceptsBatchUpToMax) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<Tensor> t,
                                BuildInputs(TwoInputModel(4), RawRequest(3)));
  EXPECT_EQ(t[0].shape(), (std::vector<int64_t>{3, 2, 2}));
  EXPECT_THAT(BuildInputs(TwoInputModel(4), RawRequest(5)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("1..4")));
  EXPECT_THAT(BuildInputs(TwoInputModel(0), RawRequest(2)),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("expected shape [1,2,2]")));
}

struct BadRequest {
  const char* what;
  void (*mutate)(inference::ModelInferRequest&);
  const char* message;
};

class TensorConversionBadTest : public ::testing::TestWithParam<BadRequest> {};

TEST_P(TensorConversionBadTest, IsInvalidArgumentSayingWhatWasExpected) {
  inference::ModelInferRequest r = RawRequest();
  GetParam().mutate(r);
  EXPECT_THAT(BuildInputs(TwoInputModel(0), r),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr(GetParam().message)))
      << GetParam().what;
}

INSTANTIATE_TEST_SUITE_P(
    Requests, TensorConversionBadTest,
    ::testing::Values(
        BadRequest{"missing input",
                   [](inference::ModelInferRequest& r) {
                     r.mutable_inputs()->RemoveLast();
                     r.mutable_raw_input_contents()->RemoveLast();
                   },
                   "expects 2 input(s) [image, scale], got 1"},
        BadRequest{"wrong name",
                   [](inference::ModelInferRequest& r) {
                     r.mutable_inputs(0)->set_name("img");
                   },
                   "unexpected input 'img'"},
        BadRequest{"duplicate",
                   [](inference::ModelInferRequest& r) {
                     r.mutable_inputs(1)->set_name("image");
                   },
                   "given twice"},
        BadRequest{"datatype",
                   [](inference::ModelInferRequest& r) {
                     r.mutable_inputs(0)->set_datatype("INT8");
                   },
                   "expected datatype UINT8, got 'INT8'"},
        BadRequest{"rank",
                   [](inference::ModelInferRequest& r) {
                     r.mutable_inputs(0)->add_shape(1);
                   },
                   "expected shape [1,2,2], got [1,2,2,1]"},
        BadRequest{"dim",
                   [](inference::ModelInferRequest& r) {
                     r.mutable_inputs(1)->set_shape(1, 4);
                   },
                   "expected shape [1,3], got [1,4]"},
        BadRequest{"byte size",
                   [](inference::ModelInferRequest& r) {
                     r.set_raw_input_contents(0, "abc");
                   },
                   "expected 4 bytes of raw_input_contents"},
        BadRequest{"raw count",
                   [](inference::ModelInferRequest& r) {
                     r.mutable_raw_input_contents()->RemoveLast();
                   },
                   "one raw_input_contents entry per input"},
        BadRequest{"raw and typed",
                   [](inference::ModelInferRequest& r) {
                     r.mutable_inputs(0)->mutable_contents()->add_uint_contents(
                         1);
                   },
                   "either raw_input_contents or contents, got both"},
        BadRequest{"neither",
                   [](inference::ModelInferRequest& r) {
                     r.clear_raw_input_contents();
                   },
                   "no data"},
        BadRequest{
            "typed count",
            [](inference::ModelInferRequest& r) {
              r.clear_raw_input_contents();
              for (int i = 0; i < 3; ++i) {
                r.mutable_inputs(0)->mutable_contents()->add_uint_contents(1);
              }
              for (int i = 0; i < 3; ++i) {
                r.mutable_inputs(1)->mutable_contents()->add_fp32_contents(1);
              }
            },
            "expected 4 values in contents.uint_contents"},
        BadRequest{
            "typed range",
            [](inference::ModelInferRequest& r) {
              r.clear_raw_input_contents();
              for (int i = 0; i < 4; ++i) {
                r.mutable_inputs(0)->mutable_contents()->add_uint_contents(
                    i == 2 ? 256 : 1);
              }
              for (int i = 0; i < 3; ++i) {
                r.mutable_inputs(1)->mutable_contents()->add_fp32_contents(1);
              }
            },
            "UINT8 value 256 at index 2"},
        BadRequest{
            "typed wrong field",
            [](inference::ModelInferRequest& r) {
              r.clear_raw_input_contents();
              for (int i = 0; i < 4; ++i) {
                r.mutable_inputs(0)->mutable_contents()->add_int_contents(1);
              }
              for (int i = 0; i < 3; ++i) {
                r.mutable_inputs(1)->mutable_contents()->add_fp32_contents(1);
              }
            },
            "expected 4 values in contents.uint_contents"}));

TEST(TensorConversionTest, SelectsRequestedOrDefaultOutputs) {
  engine::ModelInfo info = TwoInputModel(0);
  inference::ModelInferRequest r;
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<int> all, SelectOutputs(info, r));
  EXPECT_EQ(all, (std::vector<int>{0, 1}));
  r.add_outputs()->set_name("b");
  VTASERVE_ASSERT_OK_AND_ASSIGN(std::vector<int> b, SelectOutputs(info, r));
  EXPECT_EQ(b, (std::vector<int>{1}));
  r.add_outputs()->set_name("b");
  EXPECT_THAT(SelectOutputs(info, r),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("twice")));
  r.mutable_outputs(1)->set_name("c");
  EXPECT_THAT(SelectOutputs(info, r),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("unknown output 'c' (model 'm' has [a, b])")));
}

TEST(TensorConversionTest, FillsRawOutputs) {
  engine::ModelInfo info = TwoInputModel(0);
  std::vector<Tensor> outs;
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor a,
                                Tensor::Create(DataType::kInt8, {1, 4}));
  a.data<int8_t>()[2] = -3;
  outs.push_back(std::move(a));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor b,
                                Tensor::Create(DataType::kFloat32, {1, 2}));
  outs.push_back(std::move(b));
  inference::ModelInferResponse resp;
  FillOutputs(info, {0}, outs, &resp);
  ASSERT_EQ(resp.outputs_size(), 1);
  EXPECT_EQ(resp.outputs(0).name(), "a");
  EXPECT_EQ(resp.outputs(0).datatype(), "INT8");
  ASSERT_EQ(resp.raw_output_contents_size(), 1);
  EXPECT_EQ(resp.raw_output_contents(0).size(), 4u);
  EXPECT_EQ(resp.raw_output_contents(0)[2], '\xfd');
}

}  // namespace
}  // namespace vtaserve::server
