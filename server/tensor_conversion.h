// Conversion between KServe v2 tensors (ModelInferRequest/Response) and
// engine Tensors, with the request validation: every error is
// InvalidArgument and says what was expected.
// Pure functions; thread-safe.
#ifndef VTASERVE_SERVER_TENSOR_CONVERSION_H_
#define VTASERVE_SERVER_TENSOR_CONVERSION_H_

#include <vector>

#include "absl/status/statusor.h"
#include "engine/model_manager.h"
#include "engine/tensor.h"
#include "proto/inference.pb.h"

namespace vtaserve::server {

// The shape a request must use for `value` of `info`: the model's shape,
// with dim 0 = -1 (any batch 1..max_batch_size) when batching is enabled.
std::vector<int64_t> RequestShape(const engine::ModelInfo& info,
                                  const engine::Value& value);

// Validates the request's inputs against the model and copies them into
// tensors in graph input order. Raw contents (raw_input_contents, one per
// input, exact byte size) or typed contents (the field of the datatype,
// exact element count, values in range), never both, never neither.
absl::StatusOr<std::vector<Tensor>> BuildInputs(
    const engine::ModelInfo& info, const inference::ModelInferRequest& request);

// Indexes into info.outputs of the outputs to return: those the request
// names, else info.default_outputs. InvalidArgument for unknown or repeated
// names.
absl::StatusOr<std::vector<int>> SelectOutputs(
    const engine::ModelInfo& info, const inference::ModelInferRequest& request);

// Fills the response's outputs (metadata and raw_output_contents) from the
// executor's `outputs` (in graph output order) for the `selected` indexes.
void FillOutputs(const engine::ModelInfo& info,
                 const std::vector<int>& selected,
                 const std::vector<Tensor>& outputs,
                 inference::ModelInferResponse* response);

}  // namespace vtaserve::server

#endif  // VTASERVE_SERVER_TENSOR_CONVERSION_H_
