#include "engine/tensor.h"

#include <cstdlib>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vtaserve {

size_t DataTypeSize(DataType dtype) {
  switch (dtype) {
    case DataType::kInt8:
    case DataType::kUInt8:
      return 1;
    case DataType::kInt32:
    case DataType::kFloat32:
      return 4;
  }
  return 1;
}

absl::string_view DataTypeName(DataType dtype) {
  switch (dtype) {
    case DataType::kInt8:
      return "INT8";
    case DataType::kUInt8:
      return "UINT8";
    case DataType::kInt32:
      return "INT32";
    case DataType::kFloat32:
      return "FP32";
  }
  return "INVALID";
}

absl::StatusOr<DataType> DataTypeFromName(absl::string_view name) {
  if (name == "INT8") return DataType::kInt8;
  if (name == "UINT8") return DataType::kUInt8;
  if (name == "INT32") return DataType::kInt32;
  if (name == "FP32") return DataType::kFloat32;
  return absl::InvalidArgumentError(
      absl::StrCat("unsupported datatype '", name,
                   "' (expected one of INT8, UINT8, INT32, FP32)"));
}

int64_t NumElements(absl::Span<const int64_t> shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > std::numeric_limits<int64_t>::max() / d) return -1;
    n *= d;
  }
  return n;
}

std::string ShapeToString(absl::Span<const int64_t> shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

void Tensor::AlignedFree::operator()(uint8_t* p) const { std::free(p); }

absl::StatusOr<Tensor> Tensor::Create(DataType dtype,
                                      std::vector<int64_t> shape) {
  const int64_t n = NumElements(shape);
  if (n < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("invalid tensor shape ", ShapeToString(shape)));
  }
  const int64_t elem = static_cast<int64_t>(DataTypeSize(dtype));
  if (n > kMaxBytes / elem) {
    return absl::ResourceExhaustedError(
        absl::StrCat("tensor of shape ", ShapeToString(shape), " exceeds ",
                     kMaxBytes, " bytes"));
  }
  // Round up to the alignment and keep at least one cache line so that
  // bytes() is never null for a created tensor.
  size_t bytes = static_cast<size_t>(n * elem);
  size_t alloc = ((bytes + 63) / 64) * 64;
  if (alloc == 0) alloc = 64;
  void* p = std::aligned_alloc(64, alloc);
  if (p == nullptr) {
    return absl::ResourceExhaustedError(
        absl::StrCat("failed to allocate ", alloc, " bytes"));
  }
  std::memset(p, 0, alloc);
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.num_elements_ = n;
  t.data_.reset(static_cast<uint8_t*>(p));
  return t;
}

absl::Status Tensor::Reshape(std::vector<int64_t> shape) {
  if (NumElements(shape) != num_elements_) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot reshape ", ShapeToString(shape_), " to ",
                     ShapeToString(shape)));
  }
  shape_ = std::move(shape);
  return absl::OkStatus();
}

absl::StatusOr<Tensor> Tensor::Clone() const {
  absl::StatusOr<Tensor> t = Create(dtype_, shape_);
  if (!t.ok()) return t.status();
  if (byte_size() > 0) std::memcpy(t->bytes(), bytes(), byte_size());
  return t;
}

}  // namespace vtaserve
