#include "engine/npy.h"

#include <cstring>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace vtaserve {
namespace {

using ::testing::HasSubstr;
using ::vtaserve::testing::IsOk;
using ::vtaserve::testing::StatusIs;

// Bytes numpy 1.24 writes for np.save(f, np.arange(6, dtype='<f4').reshape(2,
// 3)).
std::string NumpyArange() {
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
  header.append(128 - 10 - header.size() - 1, ' ');
  header.push_back('\n');
  std::string out("\x93NUMPY\x01\x00", 8);
  out.push_back(static_cast<char>(header.size() & 0xff));
  out.push_back(static_cast<char>(header.size() >> 8));
  out += header;
  for (int i = 0; i < 6; ++i) {
    const float f = static_cast<float>(i);
    out.append(reinterpret_cast<const char*>(&f), 4);
  }
  return out;
}

TEST(NpyTest, ParsesNumpyOutput) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor t, ParseNpy(NumpyArange()));
  EXPECT_EQ(t.dtype(), DataType::kFloat32);
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{2, 3}));
  for (int i = 0; i < 6; ++i) EXPECT_EQ(t.data<float>()[i], i);
}

TEST(NpyTest, SerializesWhatNumpyWrites) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor t, ParseNpy(NumpyArange()));
  EXPECT_EQ(SerializeNpy(t), NumpyArange());
}

TEST(NpyTest, RoundTripsEveryDtypeThroughAFile) {
  for (DataType dt : {DataType::kFloat32, DataType::kUInt8, DataType::kInt8,
                      DataType::kInt32}) {
    VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor t, Tensor::Create(dt, {1, 3, 5, 7}));
    for (size_t i = 0; i < t.byte_size(); ++i)
      t.bytes()[i] = static_cast<uint8_t>(i * 31 + 7);
    const std::string path = ::testing::TempDir() + "/npy_roundtrip.npy";
    ASSERT_THAT(WriteNpy(path, t), IsOk());
    VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor back, ReadNpy(path));
    EXPECT_EQ(back.dtype(), dt);
    EXPECT_EQ(back.shape(), t.shape());
    EXPECT_EQ(std::memcmp(back.bytes(), t.bytes(), t.byte_size()), 0);
  }
}

TEST(NpyTest, HandlesOneDimensionalAndScalarShapes) {
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor v, Tensor::Create(DataType::kInt8, {4}));
  EXPECT_THAT(SerializeNpy(v), HasSubstr("'shape': (4,)"));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor back, ParseNpy(SerializeNpy(v)));
  EXPECT_EQ(back.shape(), (std::vector<int64_t>{4}));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor s, Tensor::Create(DataType::kInt32, {}));
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor sb, ParseNpy(SerializeNpy(s)));
  EXPECT_TRUE(sb.shape().empty());
  EXPECT_EQ(sb.num_elements(), 1);
}

TEST(NpyTest, ReadsVersion2Headers) {
  std::string v1 = NumpyArange();
  // Same header with a 4-byte length.
  std::string v2("\x93NUMPY\x02\x00", 8);
  const size_t len =
      static_cast<uint8_t>(v1[8]) | (static_cast<uint8_t>(v1[9]) << 8);
  v2.push_back(static_cast<char>(len & 0xff));
  v2.push_back(static_cast<char>(len >> 8));
  v2.push_back(0);
  v2.push_back(0);
  v2 += v1.substr(10);
  VTASERVE_ASSERT_OK_AND_ASSIGN(Tensor t, ParseNpy(v2));
  EXPECT_EQ(t.shape(), (std::vector<int64_t>{2, 3}));
}

TEST(NpyTest, RejectsMalformedInput) {
  const std::string good = NumpyArange();
  EXPECT_THAT(ParseNpy("not a npy file"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(
      ParseNpy(good.substr(0, good.size() - 3)),
      StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("payload")));
  EXPECT_THAT(ParseNpy(good.substr(0, 40)),
              StatusIs(absl::StatusCode::kInvalidArgument));
  std::string f8 = good;
  f8.replace(f8.find("<f4"), 3, "<f8");
  EXPECT_THAT(ParseNpy(f8),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("<f8")));
  std::string fortran = good;
  fortran.replace(fortran.find("False"), 5, "True ");
  EXPECT_THAT(ParseNpy(fortran), StatusIs(absl::StatusCode::kInvalidArgument,
                                          HasSubstr("Fortran")));
  std::string v9 = good;
  v9[6] = 9;
  EXPECT_THAT(ParseNpy(v9), StatusIs(absl::StatusCode::kInvalidArgument,
                                     HasSubstr("version")));
  std::string huge = good;
  huge.replace(huge.find("(2, 3)"), 6, "(9999999999, 9)");
  EXPECT_THAT(ParseNpy(huge), StatusIs(absl::StatusCode::kResourceExhausted));
}

TEST(NpyTest, MissingFileIsNotFound) {
  EXPECT_THAT(ReadNpy("/nonexistent/x.npy"),
              StatusIs(absl::StatusCode::kNotFound));
}

// Random corruption of the header gives a status, never a crash.
TEST(NpyTest, CorruptedHeadersNeverCrash) {
  const std::string good = NumpyArange();
  uint64_t s = 7;
  for (int t = 0; t < 2000; ++t) {
    std::string m = good;
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    m[(s >> 33) % 128] = static_cast<char>(s >> 56);
    absl::StatusOr<Tensor> r = ParseNpy(m);
    if (r.ok()) {
      EXPECT_LE(r->byte_size(), m.size());
    }
  }
}

}  // namespace
}  // namespace vtaserve
