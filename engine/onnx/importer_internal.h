// Internals of the ONNX importer (engine/onnx/onnx_importer.h), shared by
// its source files: decoded constants, the symbolic state of each ONNX
// tensor, conv/window specs and the Importer class whose methods are spread
// over tensor decoding (onnx_tensors.cc), symbol state (importer_state.cc),
// conv and window specs (conv_specs.cc), quantized ops and emission
// (quant_ops.cc), compute ops (compute_ops.cc), shape ops (shape_ops.cc) and
// the graph boundary (onnx_importer.cc). Not part of the engine's API.
#ifndef VTASERVE_ENGINE_ONNX_IMPORTER_INTERNAL_H_
#define VTASERVE_ENGINE_ONNX_IMPORTER_INTERNAL_H_

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <deque>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "engine/common/status_macros.h"
#include "engine/graph.h"
#include "engine/onnx/onnx_importer.h"
#include "onnx/onnx_pb.h"

namespace vtaserve::engine::onnx_internal {

using TP = onnx::TensorProto;

// Bounds that keep every later computation in range on malformed input.
constexpr int64_t kMaxDim = int64_t{1} << 24;
constexpr int64_t kMaxElements = int64_t{1} << 28;
constexpr int64_t kMaxConvWeights = int64_t{1} << 27;
constexpr int64_t kMaxTaps = int64_t{1}
                             << 16;  // keeps int32 accumulators exact
constexpr int kMaxWindow = 4096;
constexpr int kMaxRank = 8;
// Nodes per graph: a QDQ ResNet-152 has about 1,000; the limit bounds the
// importer's and executor's per-node memory for a hostile file.
constexpr int kMaxNodes = 20000;

// ---------------------------------------------------------------------------
// Constants (initializers and Constant nodes), decoded once.

struct ConstTensor {
  int32_t dtype = TP::UNDEFINED;
  std::vector<int64_t> dims;
  std::vector<float> f;    // FLOAT
  std::vector<int64_t> i;  // UINT8, INT8, INT32, INT64
  int64_t size() const {
    return dtype == TP::FLOAT ? static_cast<int64_t>(f.size())
                              : static_cast<int64_t>(i.size());
  }
  double at(int64_t k) const {
    return dtype == TP::FLOAT ? static_cast<double>(f[k])
                              : static_cast<double>(i[k]);
  }
};

// Name of an ONNX tensor element type, for errors.
absl::string_view OnnxTypeName(int32_t t);
// Element count of `dims`; InvalidArgument (prefixed by `what`) for a bad
// rank, a negative or huge dimension or too many elements.
absl::StatusOr<int64_t> CheckedElements(absl::Span<const int64_t> dims,
                                        absl::string_view what);
// Checks a TensorProto's shape (CheckedElements) and that it holds exactly
// that many values, without decoding or allocating anything.
absl::Status CheckTensorData(const TP& t, absl::string_view what);
// Decodes an initializer or Constant value (raw or typed data).
absl::StatusOr<ConstTensor> DecodeTensor(const TP& t, absl::string_view what);

// ---------------------------------------------------------------------------
// Node attributes.

const onnx::AttributeProto* FindAttr(const onnx::NodeProto& n,
                                     absl::string_view name);
bool AttrTypeIs(const onnx::AttributeProto& a,
                onnx::AttributeProto::AttributeType t);

// ---------------------------------------------------------------------------
// The symbolic state of one ONNX tensor during import.

enum class SymKind {
  kConst,         // an initializer or Constant
  kFloat,         // a real engine float32 value
  kQuant,         // a real engine int8-domain value with known quantization
  kDequant,       // DequantizeLinear(kQuant): float, not materialized
  kDequantConst,  // DequantizeLinear(constant): quantized weights or bias
  kPending,       // a float op on dequantized inputs waiting for its Q
};
absl::string_view SymKindName(SymKind k);

struct Sym {
  SymKind kind = SymKind::kConst;
  std::vector<int64_t> shape;
  int index =
      -1;  // kConst: consts_; kDequantConst: qconsts_; kPending: pending_
  ValueId value = -1;  // kFloat: the float value; kQuant/kDequant: int8 value
};

// DequantizeLinear of a constant: real = (data - zero_point) * scale along
// `axis` (scale and zero_point of size 1 for per-tensor).
struct QuantConst {
  int const_index = -1;
  std::vector<double> scale;
  std::vector<int64_t> zero_point;
  int axis = -1;
};

// Per-value quantization bookkeeping (engine values are all int8-domain).
struct QuantMeta {
  bool known = false;         // scale/zero point set by a producer or consumer
  bool is_uint8 = false;      // the ONNX tensor is uint8 (domain-shifted here)
  ValueId uint8_source = -1;  // the uint8 graph input this value was cast from
};

// A conv or dense before requantization.
struct ConvSpec {
  std::string name;
  bool dense = false;
  ValueId x = -1;
  double sx = 1.0;
  int32_t zx = 0;                 // int8 domain
  ConvParams geom;                // geometry only
  std::vector<int32_t> centered;  // [out][taps], w - zw (groups expanded)
  std::vector<double> w_scale;    // [out]
  std::vector<double> bias_acc;   // [out], bias in accumulator units; or empty
  std::vector<int64_t> out_shape;
};

struct AddSpec {
  std::string name;
  ValueId a = -1, b = -1;
  std::vector<int64_t> shape;
};

struct GapSpec {
  std::string name;
  ValueId x = -1;
  std::vector<int64_t> out_shape;
  int64_t pixels = 0;
};

struct PendingOp {
  enum class Kind { kConv, kAdd, kGap } kind = Kind::kConv;
  ConvSpec conv;
  AddSpec add;
  GapSpec gap;
  bool relu = false;
  std::string label;  // the float op's node, for errors
};

struct Window {
  int kh = 1, kw = 1, sh = 1, sw = 1, dh = 1, dw = 1;
  int pt = 0, pl = 0, pb = 0, pr = 0;
  int64_t oh = 0, ow = 0;
};

// InvalidArgument unless s is positive and finite.
absl::Status CheckScale(double s);

// A zero point in the engine's int8 domain (uint8 tensors are shifted by 128).
inline int32_t ToInt8Domain(int64_t zp, bool is_uint8) {
  return static_cast<int32_t>(is_uint8 ? zp - 128 : zp);
}

class Importer {
 public:
  Importer(const onnx::ModelProto& model, const ImportOptions& options)
      : model_(model), options_(options) {}

  absl::StatusOr<ModelGraph> Run();

 private:
  // --- errors
  absl::Status NodeError(absl::string_view what) const {
    return absl::InvalidArgumentError(
        absl::StrCat("node '", label_, "' (", op_type_, "): ", what));
  }
  absl::Status Annotate(const absl::Status& s) const {
    return AnnotateStatus(s,
                          absl::StrCat("node '", label_, "' (", op_type_, ")"));
  }

  // --- names and values
  std::string UniqueNodeName(const std::string& want);
  std::string UniqueValueName(const std::string& want);
  ValueId NewValue(const std::string& name, DataType dtype,
                   std::vector<int64_t> shape, float scale = 1.0f,
                   int32_t zero_point = 0);
  ValueId NewQuantValue(const std::string& name, std::vector<int64_t> shape,
                        float scale, int32_t zp8, bool is_uint8);
  void AddNode(const std::string& name, OpKind op, std::vector<ValueId> in,
               std::vector<ValueId> out, OpParams params);
  absl::Status BindQuant(ValueId v, double scale, int32_t zp8, bool is_uint8,
                         absl::string_view role);

  // --- symbols
  absl::StatusOr<const Sym*> Lookup(const std::string& name);
  absl::StatusOr<const Sym*> Input(int i, bool required = true);
  absl::Status Define(int i, Sym sym);
  // Defines output 0 as the quantized value y of `shape`.
  absl::Status DefineQuant(ValueId y, std::vector<int64_t> shape);
  // Appends `p` to pending_ and defines output 0 as that pending op.
  absl::Status DefinePending(PendingOp p, std::vector<int64_t> shape);
  absl::StatusOr<const ConstTensor*> ConstInput(int i, absl::string_view role);
  absl::StatusOr<double> ScalarScale(int i, absl::string_view role);
  // Zero point input i (optional): value in its own domain and its dtype.
  // Absent: 0 of `default_type`.
  absl::StatusOr<std::pair<int64_t, int32_t>> ScalarZeroPoint(
      int i, int32_t default_type, absl::string_view role);
  absl::StatusOr<QuantConst> ReadQuantConst(int const_index, int scale_input,
                                            int zp_input, int axis,
                                            absl::string_view role);
  absl::StatusOr<ValueId> MaterializeFloat(const Sym& s);

  // --- ops
  absl::Status HandleNode();
  absl::Status HandleConstant();
  absl::Status HandleQuantizeLinear();
  absl::Status HandleDequantizeLinear();
  absl::Status HandleConv(bool qlinear);
  absl::Status HandleMatMul(bool qlinear);
  absl::Status HandleGemm(bool qgemm);
  absl::Status HandleAdd(bool qlinear);
  absl::Status HandleRelu();
  absl::Status HandleMaxPool();
  absl::Status HandleGlobalAveragePool(bool qlinear);
  absl::Status HandleReshape(bool flatten);
  absl::Status HandleSoftmax();
  absl::Status HandleIdentity();

  absl::StatusOr<Window> ParseWindow(const std::vector<int64_t>& x_shape,
                                     int kh, int kw, bool pool);
  absl::Status BuildConvSpec(const Sym& x, const QuantConst& w, int group,
                             const Window& win, const ConstTensor* bias_int,
                             const QuantConst* bias_dq,
                             const ConstTensor* bias_float, ConvSpec& spec);
  absl::Status BuildDenseSpec(const Sym& x, const QuantConst& w, bool w_is_nk,
                              double alpha, const ConstTensor* bias_int,
                              const QuantConst* bias_dq,
                              const ConstTensor* bias_float, double beta,
                              ConvSpec& spec);
  absl::Status FillBias(const ConvSpec& spec, int64_t out,
                        const ConstTensor* bias_int, const QuantConst* bias_dq,
                        const ConstTensor* bias_float, double beta,
                        std::vector<double>& bias_acc);
  absl::StatusOr<ValueId> EmitConv(const ConvSpec& spec, double sy, int32_t zy8,
                                   bool y_uint8, bool relu,
                                   const std::string& out_name);
  // Defines output 0 of a conv-like node: a quantized kConv when the node
  // carries its output quantization at inputs y_scale_input and
  // y_scale_input + 1 (QLinearConv, QLinearMatMul, QGemm), else a pending
  // float op that a following QuantizeLinear completes (QDQ), when
  // y_scale_input < 0.
  absl::Status DefineConvResult(ConvSpec spec, int y_scale_input);
  absl::StatusOr<ValueId> EmitRequant(ValueId x, double sy, int32_t zy8,
                                      bool y_uint8,
                                      const std::string& out_name);
  absl::StatusOr<ValueId> EmitPending(const PendingOp& p, double sy,
                                      int32_t zy8, bool y_uint8,
                                      const std::string& out_name);
  absl::StatusOr<ValueId> EmitAdd(const AddSpec& a, double sy, int32_t zy8,
                                  bool y_uint8, bool relu,
                                  const std::string& out_name);
  absl::StatusOr<ValueId> EmitGap(const GapSpec& a, double sy, int32_t zy8,
                                  bool y_uint8, bool relu,
                                  const std::string& out_name);

  absl::Status AddGraphInputs();
  absl::Status AddGraphOutputs();

  const onnx::ModelProto& model_;
  const ImportOptions& options_;
  int64_t opset_ = 0;

  ModelGraph g_;
  std::vector<QuantMeta> meta_;  // by ValueId
  std::set<std::string> node_names_, value_names_;
  std::unordered_map<std::string, Sym> syms_;
  std::unordered_map<std::string, const TP*> initializers_;
  std::deque<ConstTensor> consts_;
  std::vector<QuantConst> qconsts_;
  std::vector<PendingOp> pending_;
  std::unordered_map<ValueId, ValueId> dequantized_;  // int8 value -> float

  // The node being imported.
  const onnx::NodeProto* node_ = nullptr;
  std::string label_;
  std::string op_type_;
};

}  // namespace vtaserve::engine::onnx_internal

#endif  // VTASERVE_ENGINE_ONNX_IMPORTER_INTERNAL_H_
