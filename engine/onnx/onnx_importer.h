// ONNX -> engine ModelGraph import for quantized (int8/uint8) CNNs.
//
// Accepts both ways ONNX spells a quantized model:
//  - QOperator: QLinearConv, QLinearMatMul, com.microsoft QGemm /
//    QLinearAdd / QLinearGlobalAveragePool, MaxPool / Relu / Flatten /
//    Reshape on quantized tensors, QuantizeLinear / DequantizeLinear at the
//    edges and a float Softmax at the end;
//  - QDQ: float Conv / Gemm / MatMul / Add / GlobalAveragePool surrounded by
//    DequantizeLinear (inputs, weights, bias) and QuantizeLinear (output),
//    with an optional Relu before the QuantizeLinear; MaxPool / Relu /
//    Flatten / Reshape between DQ and Q pass through, and a Q whose
//    parameters differ from its DQ's becomes an exact-to-1e-4 requantizing
//    Add (second multiplier 0).
// Every quantized op becomes one engine node with its requantization folded
// (engine/requant.h); uint8 tensors are carried in the int8 domain with Cast
// nodes at the graph boundary (engine/graph.h). Shapes are inferred here,
// value_info is ignored. Anything else is rejected at load with
// InvalidArgument naming the node and the reason; the importer never aborts
// on malformed input. Pure functions; thread-safe.
#ifndef VTASERVE_ENGINE_ONNX_ONNX_IMPORTER_H_
#define VTASERVE_ENGINE_ONNX_ONNX_IMPORTER_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "engine/graph.h"
#include "engine/requant.h"
#include "onnx/onnx_pb.h"

namespace vtaserve::engine {

struct ImportOptions {
  // How conv/dense requantization is folded. Default: RequantOptions{}.
  RequantOptions requant;
  // ModelGraph::name. Default: empty = the ONNX graph name, else "model".
  std::string model_name;
};

// Imports a parsed model. The returned graph has passed Validate(): its
// inputs keep the ONNX input names, dtypes and shapes (a symbolic, 0 or -1
// batch dimension becomes 1) and its outputs the ONNX output names.
absl::StatusOr<ModelGraph> ImportOnnxModel(const onnx::ModelProto& model,
                                           const ImportOptions& options);

// Reads and imports a .onnx file. NotFound if it does not exist;
// InvalidArgument if it is not a parsable ModelProto; then as
// ImportOnnxModel.
absl::StatusOr<ModelGraph> ImportOnnxFile(const std::string& path,
                                          const ImportOptions& options);

// Parses a serialized ModelProto and imports it. InvalidArgument for bytes
// that are not a ModelProto (corrupt or truncated).
absl::StatusOr<ModelGraph> ImportOnnxBytes(absl::string_view bytes,
                                           const ImportOptions& options);

}  // namespace vtaserve::engine

#endif  // VTASERVE_ENGINE_ONNX_ONNX_IMPORTER_H_
