// Dense tensors with 64-byte aligned, owned storage, and the data types the
// engine moves between backends. A Tensor is a value type (move-only; Clone()
// copies). Not thread-safe for concurrent mutation; const access is safe.
#ifndef VTASERVE_ENGINE_TENSOR_H_
#define VTASERVE_ENGINE_TENSOR_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace vtaserve {

enum class DataType : uint8_t {
  kInt8 = 0,
  kUInt8 = 1,
  kInt32 = 2,
  kFloat32 = 3
};

// Bytes per element.
size_t DataTypeSize(DataType dtype);
// KServe v2 datatype string: "INT8", "UINT8", "INT32", "FP32".
absl::string_view DataTypeName(DataType dtype);
// Inverse of DataTypeName; InvalidArgument for anything else.
absl::StatusOr<DataType> DataTypeFromName(absl::string_view name);

// Product of dims; -1 if any dim is negative or the product overflows int64.
int64_t NumElements(absl::Span<const int64_t> shape);
// "[1,3,224,224]".
std::string ShapeToString(absl::Span<const int64_t> shape);

class Tensor {
 public:
  // Largest tensor the engine will allocate (1 GiB); larger requests are
  // ResourceExhausted rather than an allocation abort.
  static constexpr int64_t kMaxBytes = int64_t{1} << 30;

  Tensor() = default;
  Tensor(Tensor&&) noexcept = default;
  Tensor& operator=(Tensor&&) noexcept = default;
  Tensor(const Tensor&) = delete;
  Tensor& operator=(const Tensor&) = delete;

  // Allocates a zero-filled tensor. InvalidArgument for negative dims,
  // ResourceExhausted above kMaxBytes or when allocation fails.
  static absl::StatusOr<Tensor> Create(DataType dtype,
                                       std::vector<int64_t> shape);

  DataType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t num_elements() const { return num_elements_; }
  size_t byte_size() const { return num_elements_ * DataTypeSize(dtype_); }
  bool empty() const { return data_ == nullptr; }

  // Raw storage (64-byte aligned). REQUIRES: !empty() for a non-null result.
  uint8_t* bytes() { return data_.get(); }
  const uint8_t* bytes() const { return data_.get(); }
  template <typename T>
  T* data() {
    return reinterpret_cast<T*>(data_.get());
  }
  template <typename T>
  const T* data() const {
    return reinterpret_cast<const T*>(data_.get());
  }

  // Changes the shape without touching the data. InvalidArgument unless the
  // element count is unchanged.
  absl::Status Reshape(std::vector<int64_t> shape);

  // Deep copy. ResourceExhausted if allocation fails.
  absl::StatusOr<Tensor> Clone() const;

 private:
  struct AlignedFree {
    void operator()(uint8_t* p) const;
  };
  DataType dtype_ = DataType::kInt8;
  std::vector<int64_t> shape_;
  int64_t num_elements_ = 0;
  std::unique_ptr<uint8_t[], AlignedFree> data_;
};

}  // namespace vtaserve

#endif  // VTASERVE_ENGINE_TENSOR_H_
