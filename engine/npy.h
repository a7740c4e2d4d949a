// Reading and writing numpy .npy files (format versions 1.0, 2.0 and 3.0 on
// read; 1.0, or 2.0 when the header needs it, on write) for the dtypes the
// engine moves: <f4 (FP32), |u1 (UINT8), |i1 (INT8), <i4 (INT32), C order
// only. Used by vtaserve-run and the peer tests to exchange tensors with
// numpy and ONNX Runtime. Pure functions; thread-safe.
#ifndef VTASERVE_ENGINE_NPY_H_
#define VTASERVE_ENGINE_NPY_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/tensor.h"

namespace vtaserve {

// Parses a whole .npy image. InvalidArgument for a bad magic, an unsupported
// version, dtype or Fortran order, a malformed header, or a payload whose
// size does not match the shape; ResourceExhausted for a tensor above
// Tensor::kMaxBytes.
absl::StatusOr<Tensor> ParseNpy(absl::string_view bytes);

// Serializes `tensor` as a .npy image. REQUIRES: !tensor.empty() unless it
// has zero elements.
std::string SerializeNpy(const Tensor& tensor);

// File variants. ReadNpy: NotFound if the file does not exist,
// PermissionDenied if it cannot be opened, then as ParseNpy. WriteNpy:
// PermissionDenied/NotFound when the file cannot be created (by errno),
// Internal on a failed write.
absl::StatusOr<Tensor> ReadNpy(const std::string& path);
absl::Status WriteNpy(const std::string& path, const Tensor& tensor);

}  // namespace vtaserve

#endif  // VTASERVE_ENGINE_NPY_H_
