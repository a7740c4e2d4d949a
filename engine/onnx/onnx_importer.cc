#include "engine/onnx/onnx_importer.h"

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

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/common/status_macros.h"

namespace vtaserve::engine {
namespace {

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

absl::string_view OnnxTypeName(int32_t t) {
  switch (t) {
    case TP::FLOAT:
      return "float32";
    case TP::UINT8:
      return "uint8";
    case TP::INT8:
      return "int8";
    case TP::INT32:
      return "int32";
    case TP::INT64:
      return "int64";
    case TP::FLOAT16:
      return "float16";
    case TP::DOUBLE:
      return "double";
    case TP::INT16:
      return "int16";
    case TP::UINT16:
      return "uint16";
    case TP::BOOL:
      return "bool";
    case TP::STRING:
      return "string";
    default:
      return "unsupported type";
  }
}

absl::StatusOr<int64_t> CheckedElements(absl::Span<const int64_t> dims,
                                        absl::string_view what) {
  if (dims.size() > kMaxRank) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": rank ", dims.size(), " exceeds ", kMaxRank));
  }
  int64_t n = 1;
  for (int64_t d : dims) {
    if (d < 0 || d > kMaxDim) {
      return absl::InvalidArgumentError(absl::StrCat(
          what, ": bad dimension ", d, " in ", ShapeToString(dims)));
    }
    n *= d;
    if (n > kMaxElements) {
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": shape ", ShapeToString(dims), " is too large"));
    }
  }
  return n;
}

// Checks a TensorProto's shape (CheckedElements) and that it holds exactly
// that many values, without decoding them. DecodeTensor repeats the checks
// for the types it supports.
absl::Status CheckTensorData(const TP& t, absl::string_view what) {
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  VTASERVE_ASSIGN_OR_RETURN(const int64_t n, CheckedElements(dims, what));
  int64_t got = -1;
  int64_t bytes = 0;
  switch (t.data_type()) {
    case TP::FLOAT:
    case TP::INT32:
      bytes = 4;
      got = t.data_type() == TP::FLOAT ? t.float_data_size()
                                       : t.int32_data_size();
      break;
    case TP::INT64:
      bytes = 8;
      got = t.int64_data_size();
      break;
    case TP::UINT8:
    case TP::INT8:
      bytes = 1;
      got = t.int32_data_size();
      break;
    default:
      return absl::OkStatus();  // refused where it is used, if at all
  }
  if (t.has_raw_data()) got = static_cast<int64_t>(t.raw_data().size()) / bytes;
  if (t.data_location() != TP::EXTERNAL && got != n) {
    return absl::InvalidArgumentError(absl::StrCat(
        what, ": ", OnnxTypeName(t.data_type()), " tensor of shape ",
        ShapeToString(dims), " holds ", got, " values (truncated or corrupt)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<ConstTensor> DecodeTensor(const TP& t, absl::string_view what) {
  if (t.data_location() == TP::EXTERNAL || t.external_data_size() > 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": external tensor data is unsupported"));
  }
  if (t.has_segment()) {
    return absl::InvalidArgumentError(absl::StrCat(what, ": segmented tensor"));
  }
  // The value count first: the cases below allocate n values.
  VTASERVE_RETURN_IF_ERROR(CheckTensorData(t, what));
  ConstTensor c;
  c.dtype = t.data_type();
  c.dims.assign(t.dims().begin(), t.dims().end());
  VTASERVE_ASSIGN_OR_RETURN(const int64_t n, CheckedElements(c.dims, what));
  const std::string& raw = t.raw_data();
  const bool has_raw = t.has_raw_data();
  auto size_error = [&](int64_t got) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, ": ", OnnxTypeName(c.dtype), " tensor of shape ",
                     ShapeToString(c.dims), " holds ", got,
                     " values (truncated or corrupt)"));
  };
  switch (c.dtype) {
    case TP::FLOAT: {
      if (has_raw) {
        if (static_cast<int64_t>(raw.size()) != n * 4)
          return size_error(raw.size() / 4);
        c.f.resize(n);
        if (n > 0) std::memcpy(c.f.data(), raw.data(), n * 4);
      } else {
        if (t.float_data_size() != n) return size_error(t.float_data_size());
        c.f.assign(t.float_data().begin(), t.float_data().end());
      }
      return c;
    }
    case TP::UINT8:
    case TP::INT8: {
      const bool is_u8 = c.dtype == TP::UINT8;
      c.i.resize(n);
      if (has_raw) {
        if (static_cast<int64_t>(raw.size()) != n)
          return size_error(raw.size());
        for (int64_t k = 0; k < n; ++k) {
          c.i[k] = is_u8 ? int64_t{static_cast<uint8_t>(raw[k])}
                         : int64_t{static_cast<int8_t>(raw[k])};
        }
      } else {
        if (t.int32_data_size() != n) return size_error(t.int32_data_size());
        const int64_t lo = is_u8 ? 0 : -128, hi = is_u8 ? 255 : 127;
        for (int64_t k = 0; k < n; ++k) {
          const int64_t v = t.int32_data(k);
          if (v < lo || v > hi) {
            return absl::InvalidArgumentError(
                absl::StrCat(what, ": value ", v, " out of ",
                             OnnxTypeName(c.dtype), " range"));
          }
          c.i[k] = v;
        }
      }
      return c;
    }
    case TP::INT32: {
      c.i.resize(n);
      if (has_raw) {
        if (static_cast<int64_t>(raw.size()) != n * 4)
          return size_error(raw.size() / 4);
        for (int64_t k = 0; k < n; ++k) {
          int32_t v;
          std::memcpy(&v, raw.data() + 4 * k, 4);
          c.i[k] = v;
        }
      } else {
        if (t.int32_data_size() != n) return size_error(t.int32_data_size());
        for (int64_t k = 0; k < n; ++k) c.i[k] = t.int32_data(k);
      }
      return c;
    }
    case TP::INT64: {
      c.i.resize(n);
      if (has_raw) {
        if (static_cast<int64_t>(raw.size()) != n * 8)
          return size_error(raw.size() / 8);
        for (int64_t k = 0; k < n; ++k) {
          int64_t v;
          std::memcpy(&v, raw.data() + 8 * k, 8);
          c.i[k] = v;
        }
      } else {
        if (t.int64_data_size() != n) return size_error(t.int64_data_size());
        c.i.assign(t.int64_data().begin(), t.int64_data().end());
      }
      return c;
    }
    default:
      return absl::InvalidArgumentError(
          absl::StrCat(what, ": tensors of type ", OnnxTypeName(c.dtype), " (",
                       c.dtype, ") are unsupported"));
  }
}

// ---------------------------------------------------------------------------
// Node attributes.

const onnx::AttributeProto* FindAttr(const onnx::NodeProto& n,
                                     absl::string_view name) {
  for (const auto& a : n.attribute()) {
    if (a.name() == name) return &a;
  }
  return nullptr;
}

bool AttrTypeIs(const onnx::AttributeProto& a,
                onnx::AttributeProto::AttributeType t) {
  return a.type() == t || a.type() == onnx::AttributeProto::UNDEFINED;
}

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

absl::string_view SymKindName(SymKind k) {
  switch (k) {
    case SymKind::kConst:
      return "a constant";
    case SymKind::kFloat:
      return "a float tensor";
    case SymKind::kQuant:
      return "a quantized tensor";
    case SymKind::kDequant:
      return "a DequantizeLinear output";
    case SymKind::kDequantConst:
      return "a dequantized constant";
    case SymKind::kPending:
      return "an unquantized float op output";
  }
  return "?";
}

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

std::string Importer::UniqueNodeName(const std::string& want) {
  std::string name = want.empty() ? "op" : want;
  for (int k = 1; node_names_.count(name) > 0; ++k) {
    name = absl::StrCat(want, "_", k);
  }
  node_names_.insert(name);
  return name;
}

std::string Importer::UniqueValueName(const std::string& want) {
  std::string name = want.empty() ? "tensor" : want;
  for (int k = 1; value_names_.count(name) > 0; ++k) {
    name = absl::StrCat(want, "_", k);
  }
  value_names_.insert(name);
  return name;
}

ValueId Importer::NewValue(const std::string& name, DataType dtype,
                           std::vector<int64_t> shape, float scale,
                           int32_t zero_point) {
  Value v;
  v.name = UniqueValueName(name);
  v.dtype = dtype;
  v.shape = std::move(shape);
  v.scale = scale;
  v.zero_point = zero_point;
  g_.values.push_back(std::move(v));
  meta_.emplace_back();
  return static_cast<ValueId>(g_.values.size() - 1);
}

ValueId Importer::NewQuantValue(const std::string& name,
                                std::vector<int64_t> shape, float scale,
                                int32_t zp8, bool is_uint8) {
  const ValueId v =
      NewValue(name, DataType::kInt8, std::move(shape), scale, zp8);
  meta_[v].known = true;
  meta_[v].is_uint8 = is_uint8;
  return v;
}

void Importer::AddNode(const std::string& name, OpKind op,
                       std::vector<ValueId> in, std::vector<ValueId> out,
                       OpParams params) {
  Node n;
  n.name = UniqueNodeName(name);
  n.op = op;
  n.inputs = std::move(in);
  n.outputs = std::move(out);
  n.params = std::move(params);
  g_.nodes.push_back(std::move(n));
}

absl::Status Importer::BindQuant(ValueId v, double scale, int32_t zp8,
                                 bool is_uint8, absl::string_view role) {
  QuantMeta& m = meta_[v];
  Value& val = g_.values[v];
  if (m.is_uint8 != is_uint8) {
    return NodeError(
        absl::StrCat(role, " '", val.name, "' is ",
                     m.is_uint8 ? "uint8" : "int8", " but its zero point is ",
                     is_uint8 ? "uint8" : "int8", " (dtype mismatch)"));
  }
  const float s = static_cast<float>(scale);
  if (m.known) {
    if (val.scale != s || val.zero_point != zp8) {
      return NodeError(absl::StrCat(
          role, " '", val.name, "' is quantized with scale ", val.scale,
          " zero point ", val.zero_point + (is_uint8 ? 128 : 0),
          " by its producer but read with scale ", s, " zero point ",
          zp8 + (is_uint8 ? 128 : 0), " (requantization is unsupported)"));
    }
    return absl::OkStatus();
  }
  m.known = true;
  val.scale = s;
  val.zero_point = zp8;
  if (m.uint8_source >= 0) {
    g_.values[m.uint8_source].scale = s;
    g_.values[m.uint8_source].zero_point = zp8 + 128;
  }
  return absl::OkStatus();
}

absl::StatusOr<const Sym*> Importer::Lookup(const std::string& name) {
  auto it = syms_.find(name);
  if (it != syms_.end()) return &it->second;
  auto init = initializers_.find(name);
  if (init == initializers_.end()) {
    return NodeError(absl::StrCat(
        "input '", name,
        "' is neither a graph input, an initializer nor the output of an "
        "earlier node (missing initializer or graph not topologically "
        "sorted)"));
  }
  absl::StatusOr<ConstTensor> c =
      DecodeTensor(*init->second, absl::StrCat("initializer '", name, "'"));
  if (!c.ok()) return Annotate(c.status());
  Sym s;
  s.kind = SymKind::kConst;
  s.shape = c->dims;
  s.index = static_cast<int>(consts_.size());
  consts_.push_back(std::move(c).value());
  return &syms_.emplace(name, std::move(s)).first->second;
}

absl::StatusOr<const Sym*> Importer::Input(int i, bool required) {
  if (i >= node_->input_size() || node_->input(i).empty()) {
    if (required) return NodeError(absl::StrCat("missing required input ", i));
    return static_cast<const Sym*>(nullptr);
  }
  return Lookup(node_->input(i));
}

absl::Status Importer::Define(int i, Sym sym) {
  if (i >= node_->output_size()) {
    return NodeError(absl::StrCat("missing output ", i));
  }
  const std::string& name = node_->output(i);
  if (name.empty()) return absl::OkStatus();
  if (syms_.count(name) > 0 || initializers_.count(name) > 0) {
    return NodeError(absl::StrCat("tensor '", name, "' is produced twice"));
  }
  syms_.emplace(name, std::move(sym));
  return absl::OkStatus();
}

absl::Status Importer::DefineQuant(ValueId y, std::vector<int64_t> shape) {
  Sym out;
  out.kind = SymKind::kQuant;
  out.value = y;
  out.shape = std::move(shape);
  return Define(0, std::move(out));
}

absl::Status Importer::DefinePending(PendingOp p, std::vector<int64_t> shape) {
  Sym out;
  out.kind = SymKind::kPending;
  out.shape = std::move(shape);
  out.index = static_cast<int>(pending_.size());
  pending_.push_back(std::move(p));
  return Define(0, std::move(out));
}

absl::StatusOr<const ConstTensor*> Importer::ConstInput(
    int i, absl::string_view role) {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* s, Input(i));
  if (s->kind != SymKind::kConst) {
    return NodeError(absl::StrCat(role, " '", node_->input(i),
                                  "' must be a constant, got ",
                                  SymKindName(s->kind)));
  }
  return &consts_[s->index];
}

absl::Status CheckScale(double s) {
  if (!std::isfinite(s) || !(s > 0.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("scale ", s, " is not positive and finite"));
  }
  return absl::OkStatus();
}

absl::StatusOr<double> Importer::ScalarScale(int i, absl::string_view role) {
  VTASERVE_ASSIGN_OR_RETURN(const ConstTensor* c, ConstInput(i, role));
  if (c->dtype != TP::FLOAT) {
    return NodeError(
        absl::StrCat(role, " must be float32, got ", OnnxTypeName(c->dtype)));
  }
  if (c->size() != 1) {
    return NodeError(absl::StrCat(
        role,
        " must be a scalar here (per-axis activation quantization is "
        "unsupported), got shape ",
        ShapeToString(c->dims)));
  }
  const double s = c->f[0];
  if (absl::Status st = CheckScale(s); !st.ok()) {
    return NodeError(absl::StrCat(role, ": ", st.message()));
  }
  return s;
}

absl::StatusOr<std::pair<int64_t, int32_t>> Importer::ScalarZeroPoint(
    int i, int32_t default_type, absl::string_view role) {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* s, Input(i, /*required=*/false));
  if (s == nullptr) return std::make_pair(int64_t{0}, default_type);
  VTASERVE_ASSIGN_OR_RETURN(const ConstTensor* c, ConstInput(i, role));
  if (c->dtype != TP::UINT8 && c->dtype != TP::INT8) {
    return NodeError(absl::StrCat(role, " must be uint8 or int8, got ",
                                  OnnxTypeName(c->dtype)));
  }
  if (c->size() != 1) {
    return NodeError(absl::StrCat(role, " must be a scalar, got shape ",
                                  ShapeToString(c->dims)));
  }
  return std::make_pair(c->i[0], c->dtype);
}

// Scale/zero point of a constant being dequantized (or quantized).
absl::StatusOr<QuantConst> Importer::ReadQuantConst(int const_index,
                                                    int scale_input,
                                                    int zp_input, int axis,
                                                    absl::string_view role) {
  const ConstTensor& data = consts_[const_index];
  VTASERVE_ASSIGN_OR_RETURN(
      const ConstTensor* sc,
      ConstInput(scale_input, absl::StrCat(role, " scale")));
  if (sc->dtype != TP::FLOAT) {
    return NodeError(absl::StrCat(role, " scale must be float32, got ",
                                  OnnxTypeName(sc->dtype)));
  }
  QuantConst q;
  q.const_index = const_index;
  const int64_t ns = sc->size();
  if (ns == 0) return NodeError(absl::StrCat(role, " scale is empty"));
  if (ns != 1) {
    // Per-axis: a 1-D scale with one entry per index of `axis`.
    const int rank = static_cast<int>(data.dims.size());
    if (sc->dims.size() != 1 || rank == 0) {
      return NodeError(absl::StrCat(role, " scale of shape ",
                                    ShapeToString(sc->dims),
                                    " is neither a scalar nor 1-D"));
    }
    const int a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a >= rank) {
      return NodeError(absl::StrCat("bad quantization axis ", axis, " for ",
                                    role, " of rank ", rank));
    }
    if (data.dims[a] != ns) {
      return NodeError(absl::StrCat("bad quantization axis ", axis, ": ", role,
                                    " has ", data.dims[a],
                                    " entries on it but the scale has ", ns));
    }
    q.axis = a;
  }
  for (int64_t k = 0; k < ns; ++k) {
    const double s = sc->f[k];
    if (absl::Status st = CheckScale(s); !st.ok()) {
      return NodeError(absl::StrCat(role, ": ", st.message()));
    }
    q.scale.push_back(s);
  }
  VTASERVE_ASSIGN_OR_RETURN(const Sym* zs, Input(zp_input, /*required=*/false));
  if (zs == nullptr) {
    q.zero_point.assign(ns, 0);
    return q;
  }
  VTASERVE_ASSIGN_OR_RETURN(
      const ConstTensor* zp,
      ConstInput(zp_input, absl::StrCat(role, " zero point")));
  if (zp->dtype != data.dtype) {
    return NodeError(absl::StrCat(
        role, " is ", OnnxTypeName(data.dtype), " but its zero point is ",
        OnnxTypeName(zp->dtype), " (dtype mismatch)"));
  }
  if (zp->size() != ns) {
    return NodeError(absl::StrCat(role, " zero point has ", zp->size(),
                                  " entries, the scale ", ns));
  }
  q.zero_point = zp->i;
  return q;
}

absl::StatusOr<ValueId> Importer::MaterializeFloat(const Sym& s) {
  if (s.kind == SymKind::kFloat) return s.value;
  if (s.kind != SymKind::kDequant) {
    return NodeError(
        absl::StrCat("expected a float tensor, got ", SymKindName(s.kind)));
  }
  auto it = dequantized_.find(s.value);
  if (it != dequantized_.end()) return it->second;
  const Value& q = g_.values[s.value];
  const ValueId f = NewValue(absl::StrCat(q.name, "_dequantized"),
                             DataType::kFloat32, q.shape);
  QuantizeParams p;
  p.scale = q.scale;
  p.zero_point = q.zero_point;
  AddNode(absl::StrCat(q.name, "_dequantize"), OpKind::kDequantize, {s.value},
          {f}, p);
  dequantized_.emplace(s.value, f);
  return f;
}

// ---------------------------------------------------------------------------
// Windows (conv and pool geometry).

absl::StatusOr<Window> Importer::ParseWindow(const std::vector<int64_t>& x,
                                             int kh, int kw, bool pool) {
  Window w;
  w.kh = kh;
  w.kw = kw;
  auto ints =
      [&](absl::string_view name) -> absl::StatusOr<std::vector<int64_t>> {
    const onnx::AttributeProto* a = FindAttr(*node_, name);
    if (a == nullptr) return std::vector<int64_t>{};
    if (!AttrTypeIs(*a, onnx::AttributeProto::INTS)) {
      return NodeError(absl::StrCat("attribute ", name, " must be ints"));
    }
    return std::vector<int64_t>(a->ints().begin(), a->ints().end());
  };
  auto in_range = [](int64_t v, int64_t lo, int64_t hi) {
    return v >= lo && v <= hi;
  };
  VTASERVE_ASSIGN_OR_RETURN(std::vector<int64_t> strides, ints("strides"));
  VTASERVE_ASSIGN_OR_RETURN(std::vector<int64_t> dil, ints("dilations"));
  VTASERVE_ASSIGN_OR_RETURN(std::vector<int64_t> pads, ints("pads"));
  if (!strides.empty()) {
    if (strides.size() != 2 || !in_range(strides[0], 1, kMaxWindow) ||
        !in_range(strides[1], 1, kMaxWindow)) {
      return NodeError(
          absl::StrCat("bad strides [", absl::StrJoin(strides, ","), "]"));
    }
    w.sh = static_cast<int>(strides[0]);
    w.sw = static_cast<int>(strides[1]);
  }
  if (!dil.empty()) {
    if (dil.size() != 2 || !in_range(dil[0], 1, kMaxWindow) ||
        !in_range(dil[1], 1, kMaxWindow)) {
      return NodeError(
          absl::StrCat("bad dilations [", absl::StrJoin(dil, ","), "]"));
    }
    w.dh = static_cast<int>(dil[0]);
    w.dw = static_cast<int>(dil[1]);
    if (pool && (w.dh != 1 || w.dw != 1)) {
      return NodeError("dilated MaxPool is unsupported");
    }
  }
  std::string auto_pad = "NOTSET";
  if (const onnx::AttributeProto* a = FindAttr(*node_, "auto_pad")) {
    if (!AttrTypeIs(*a, onnx::AttributeProto::STRING)) {
      return NodeError("attribute auto_pad must be a string");
    }
    auto_pad = a->s();
    if (auto_pad.empty()) auto_pad = "NOTSET";
  }
  const int64_t in_h = x[2], in_w = x[3];
  const int64_t eff_h = int64_t{w.dh} * (w.kh - 1) + 1;
  const int64_t eff_w = int64_t{w.dw} * (w.kw - 1) + 1;
  if (auto_pad == "NOTSET") {
    if (!pads.empty()) {
      if (pads.size() != 4) {
        return NodeError(
            absl::StrCat("pads must have 4 values, got ", pads.size()));
      }
      for (int64_t p : pads) {
        if (!in_range(p, 0, kMaxWindow)) {
          return NodeError(
              absl::StrCat("bad pads [", absl::StrJoin(pads, ","), "]"));
        }
      }
      w.pt = static_cast<int>(pads[0]);
      w.pl = static_cast<int>(pads[1]);
      w.pb = static_cast<int>(pads[2]);
      w.pr = static_cast<int>(pads[3]);
    }
  } else if (auto_pad == "VALID") {
    // no padding
  } else if (auto_pad == "SAME_UPPER" || auto_pad == "SAME_LOWER") {
    const bool upper = auto_pad == "SAME_UPPER";
    auto same = [&](int64_t in, int s, int64_t eff, int& begin, int& end) {
      const int64_t out = (in + s - 1) / s;
      const int64_t total = std::max<int64_t>(0, (out - 1) * s + eff - in);
      const int64_t small = total / 2, large = total - total / 2;
      begin = static_cast<int>(upper ? small : large);
      end = static_cast<int>(upper ? large : small);
    };
    same(in_h, w.sh, eff_h, w.pt, w.pb);
    same(in_w, w.sw, eff_w, w.pl, w.pr);
  } else {
    return NodeError(absl::StrCat("unsupported auto_pad '", auto_pad, "'"));
  }
  const int64_t span_h = in_h + w.pt + w.pb - eff_h;
  const int64_t span_w = in_w + w.pl + w.pr - eff_w;
  if (span_h < 0 || span_w < 0) {
    return NodeError(absl::StrCat("kernel ", w.kh, "x", w.kw,
                                  " is larger than the padded input ",
                                  ShapeToString(x)));
  }
  w.oh = span_h / w.sh + 1;
  w.ow = span_w / w.sw + 1;
  if (pool) {
    if (const onnx::AttributeProto* a = FindAttr(*node_, "ceil_mode")) {
      if (a->i() != 0) {
        const int64_t ch = (span_h + w.sh - 1) / w.sh + 1;
        const int64_t cw = (span_w + w.sw - 1) / w.sw + 1;
        if (ch != w.oh || cw != w.ow) {
          return NodeError(
              "ceil_mode=1 changing the output size is unsupported");
        }
      }
    }
    if (w.pt >= w.kh || w.pb >= w.kh || w.pl >= w.kw || w.pr >= w.kw) {
      return NodeError("MaxPool padding must be smaller than the kernel");
    }
  }
  return w;
}

// ---------------------------------------------------------------------------
// Conv and dense specs.

absl::Status Importer::FillBias(const ConvSpec& spec, int64_t out,
                                const ConstTensor* bias_int,
                                const QuantConst* bias_dq,
                                const ConstTensor* bias_float, double beta,
                                std::vector<double>& bias_acc) {
  bias_acc.clear();
  const ConstTensor* data = bias_int;
  if (bias_dq != nullptr) data = &consts_[bias_dq->const_index];
  if (bias_float != nullptr) data = bias_float;
  if (data == nullptr) return absl::OkStatus();
  const int64_t n = data->size();
  if (n != out && n != 1) {
    return NodeError(
        absl::StrCat("bias has ", n, " values for ", out, " output channels"));
  }
  if (bias_int != nullptr && bias_int->dtype != TP::INT32) {
    return NodeError(absl::StrCat("bias must be int32, got ",
                                  OnnxTypeName(bias_int->dtype)));
  }
  if (bias_dq != nullptr && data->dtype != TP::INT32) {
    return NodeError(absl::StrCat("dequantized bias must be int32, got ",
                                  OnnxTypeName(data->dtype)));
  }
  if (bias_float != nullptr && data->dtype != TP::FLOAT) {
    return NodeError(
        absl::StrCat("bias must be float32 or a dequantized int32, got ",
                     OnnxTypeName(data->dtype)));
  }
  bias_acc.resize(out);
  for (int64_t c = 0; c < out; ++c) {
    const int64_t k = n == 1 ? 0 : c;
    const double acc_scale = spec.sx * spec.w_scale[c];
    double v = 0.0;
    if (bias_int != nullptr) {
      v = static_cast<double>(data->i[k]);
    } else if (bias_dq != nullptr) {
      const size_t qk = bias_dq->scale.size() == 1 ? 0 : static_cast<size_t>(c);
      if (bias_dq->scale.size() != 1 && bias_dq->scale.size() != size_t(out)) {
        return NodeError("bias scale does not match the output channels");
      }
      const double sb = bias_dq->scale[qk];
      const int64_t zb = bias_dq->zero_point[qk];
      // The usual QDQ form: bias scale = s_x * s_w[c] (as a float32) and
      // zero point 0, i.e. an accumulator-unit integer, exactly as
      // QLinearConv's bias. Keep it exact then.
      const float implied = static_cast<float>(acc_scale);
      if (zb == 0 && std::fabs(sb - implied) <= 1e-6 * implied) {
        v = static_cast<double>(data->i[k]);
      } else {
        v = static_cast<double>(data->i[k] - zb) * sb / acc_scale;
      }
    } else {
      v = static_cast<double>(data->f[k]) / acc_scale;
    }
    v *= beta;
    if (!std::isfinite(v) || std::fabs(v) > 1e12) {
      return NodeError(absl::StrCat("bias of channel ", c, " is out of range"));
    }
    bias_acc[c] = v;
  }
  return absl::OkStatus();
}

absl::Status Importer::BuildConvSpec(const Sym& x, const QuantConst& w,
                                     int group, const Window& win,
                                     const ConstTensor* bias_int,
                                     const QuantConst* bias_dq,
                                     const ConstTensor* bias_float,
                                     ConvSpec& spec) {
  const ConstTensor& wd = consts_[w.const_index];
  if (wd.dtype != TP::INT8 && wd.dtype != TP::UINT8) {
    return NodeError(absl::StrCat("weights must be int8 or uint8, got ",
                                  OnnxTypeName(wd.dtype)));
  }
  if (wd.dims.size() != 4) {
    return NodeError(absl::StrCat("only 2-D convolution is supported; weights ",
                                  ShapeToString(wd.dims)));
  }
  const Value& xv = g_.values[x.value];
  const int64_t m = wd.dims[0], cg = wd.dims[1];
  const int64_t c_in = xv.shape[1];
  if (group <= 0 || m % group != 0 || cg * group != c_in || m <= 0 || cg <= 0) {
    return NodeError(absl::StrCat("weights ", ShapeToString(wd.dims),
                                  " with group ", group, " do not fit input ",
                                  ShapeToString(xv.shape)));
  }
  if (w.scale.size() != 1 && w.axis != 0) {
    return NodeError(absl::StrCat("bad quantization axis ", w.axis,
                                  " for conv weights (must be 0)"));
  }
  const int64_t taps = c_in * win.kh * win.kw;
  if (taps > kMaxTaps || m * taps > kMaxConvWeights) {
    return NodeError("convolution is too large");
  }
  spec.name = label_;
  spec.x = x.value;
  spec.sx = xv.scale;
  spec.zx = xv.zero_point;
  ConvParams& p = spec.geom;
  p.in_channels = static_cast<int>(c_in);
  p.out_channels = static_cast<int>(m);
  p.kernel_h = win.kh;
  p.kernel_w = win.kw;
  p.stride_h = win.sh;
  p.stride_w = win.sw;
  p.dilation_h = win.dh;
  p.dilation_w = win.dw;
  p.pad_top = win.pt;
  p.pad_left = win.pl;
  p.pad_bottom = win.pb;
  p.pad_right = win.pr;
  spec.out_shape = {1, m, win.oh, win.ow};
  if (absl::StatusOr<int64_t> n = CheckedElements(spec.out_shape, "output");
      !n.ok()) {
    return NodeError(n.status().message());
  }
  spec.w_scale.resize(m);
  spec.centered.assign(m * taps, 0);
  const int64_t mg = m / group;
  const int64_t khw = int64_t{win.kh} * win.kw;
  for (int64_t oc = 0; oc < m; ++oc) {
    const size_t qk = w.scale.size() == 1 ? 0 : static_cast<size_t>(oc);
    spec.w_scale[oc] = w.scale[qk];
    const int64_t zw = w.zero_point[qk];
    const int64_t g = oc / mg;
    for (int64_t ci = 0; ci < cg; ++ci) {
      for (int64_t k = 0; k < khw; ++k) {
        const int64_t src = (oc * cg + ci) * khw + k;
        const int64_t dst = oc * taps + (g * cg + ci) * khw + k;
        spec.centered[dst] = static_cast<int32_t>(wd.i[src] - zw);
      }
    }
  }
  return FillBias(spec, m, bias_int, bias_dq, bias_float, 1.0, spec.bias_acc);
}

absl::Status Importer::BuildDenseSpec(const Sym& x, const QuantConst& w,
                                      bool w_is_nk, double alpha,
                                      const ConstTensor* bias_int,
                                      const QuantConst* bias_dq,
                                      const ConstTensor* bias_float,
                                      double beta, ConvSpec& spec) {
  const ConstTensor& wd = consts_[w.const_index];
  if (wd.dtype != TP::INT8 && wd.dtype != TP::UINT8) {
    return NodeError(absl::StrCat("weights must be int8 or uint8, got ",
                                  OnnxTypeName(wd.dtype)));
  }
  const Value& xv = g_.values[x.value];
  if (xv.shape.size() != 2 || xv.shape[0] != 1) {
    return NodeError(
        absl::StrCat("input must be [1, K], got ", ShapeToString(xv.shape)));
  }
  if (wd.dims.size() != 2) {
    return NodeError(
        absl::StrCat("weights must be 2-D, got ", ShapeToString(wd.dims)));
  }
  const int64_t k_dim = w_is_nk ? wd.dims[1] : wd.dims[0];
  const int64_t n_dim = w_is_nk ? wd.dims[0] : wd.dims[1];
  if (k_dim != xv.shape[1] || n_dim <= 0) {
    return NodeError(absl::StrCat("weights ", ShapeToString(wd.dims),
                                  " do not match input ",
                                  ShapeToString(xv.shape)));
  }
  const int out_axis = w_is_nk ? 0 : 1;
  if (w.scale.size() != 1 && w.axis != out_axis) {
    return NodeError(absl::StrCat("bad quantization axis ", w.axis,
                                  " for weights (must be the output axis ",
                                  out_axis, ")"));
  }
  if (k_dim > kMaxTaps || k_dim * n_dim > kMaxConvWeights) {
    return NodeError("dense layer is too large");
  }
  if (!std::isfinite(alpha) || !(alpha > 0.0)) {
    return NodeError(absl::StrCat("alpha ", alpha, " must be positive"));
  }
  spec.name = label_;
  spec.dense = true;
  spec.x = x.value;
  spec.sx = xv.scale;
  spec.zx = xv.zero_point;
  spec.geom.in_channels = static_cast<int>(k_dim);
  spec.geom.out_channels = static_cast<int>(n_dim);
  spec.out_shape = {1, n_dim};
  spec.w_scale.resize(n_dim);
  spec.centered.resize(n_dim * k_dim);
  for (int64_t n = 0; n < n_dim; ++n) {
    const size_t qk = w.scale.size() == 1 ? 0 : static_cast<size_t>(n);
    spec.w_scale[n] = w.scale[qk] * alpha;
    const int64_t zw = w.zero_point[qk];
    for (int64_t k = 0; k < k_dim; ++k) {
      const int64_t src = w_is_nk ? n * k_dim + k : k * n_dim + n;
      spec.centered[n * k_dim + k] = static_cast<int32_t>(wd.i[src] - zw);
    }
  }
  return FillBias(spec, n_dim, bias_int, bias_dq, bias_float, beta,
                  spec.bias_acc);
}

// ---------------------------------------------------------------------------
// Emission of requantized ops.

absl::StatusOr<ValueId> Importer::EmitConv(const ConvSpec& spec, double sy,
                                           int32_t zy8, bool y_uint8, bool relu,
                                           const std::string& out_name) {
  FloatConvQuant q;
  q.out_channels = spec.geom.out_channels;
  q.taps_per_channel =
      spec.geom.in_channels * spec.geom.kernel_h * spec.geom.kernel_w;
  q.centered_weights = spec.centered;
  q.multiplier.resize(q.out_channels);
  for (int c = 0; c < q.out_channels; ++c) {
    q.multiplier[c] = spec.sx * spec.w_scale[c] / sy;
  }
  if (!spec.bias_acc.empty()) {
    q.bias_lsb.resize(q.out_channels);
    for (int c = 0; c < q.out_channels; ++c) {
      q.bias_lsb[c] = spec.bias_acc[c] * q.multiplier[c];
    }
  }
  q.input_zero_point = spec.zx;
  q.output_zero_point = zy8;
  q.clamp_min = relu ? std::max(-128, zy8) : -128;
  q.clamp_max = 127;
  ConvParams p = spec.geom;
  if (absl::Status s = FoldConvRequant(q, options_.requant, p); !s.ok()) {
    return NodeError(absl::StrCat("requantization: ", s.message()));
  }
  const ValueId y = NewQuantValue(out_name, spec.out_shape,
                                  static_cast<float>(sy), zy8, y_uint8);
  AddNode(spec.name, spec.dense ? OpKind::kDense : OpKind::kConv, {spec.x}, {y},
          std::move(p));
  return y;
}

absl::StatusOr<ValueId> Importer::EmitAdd(const AddSpec& a, double sy,
                                          int32_t zy8, bool y_uint8, bool relu,
                                          const std::string& out_name) {
  const Value& va = g_.values[a.a];
  const Value& vb = g_.values[a.b];
  absl::StatusOr<AddParams> p = ComputeAddParams(
      va.scale, va.zero_point, vb.scale, vb.zero_point, sy, zy8, relu);
  if (!p.ok())
    return NodeError(absl::StrCat("requantization: ", p.status().message()));
  const ValueId y =
      NewQuantValue(out_name, a.shape, static_cast<float>(sy), zy8, y_uint8);
  AddNode(a.name, OpKind::kAdd, {a.a, a.b}, {y}, *p);
  return y;
}

absl::StatusOr<ValueId> Importer::EmitGap(const GapSpec& a, double sy,
                                          int32_t zy8, bool y_uint8, bool relu,
                                          const std::string& out_name) {
  const Value& vx = g_.values[a.x];
  absl::StatusOr<GapParams> p =
      ComputeGapParams(vx.scale, vx.zero_point, sy, zy8, a.pixels);
  if (!p.ok())
    return NodeError(absl::StrCat("requantization: ", p.status().message()));
  // GlobalAvgPool has no clamp: a folded Relu becomes a kRelu after it.
  const bool add_relu = relu && zy8 > -128;
  const ValueId y =
      NewQuantValue(add_relu ? absl::StrCat(out_name, "_prerelu") : out_name,
                    a.out_shape, static_cast<float>(sy), zy8, y_uint8);
  AddNode(a.name, OpKind::kGlobalAvgPool, {a.x}, {y}, *p);
  if (!add_relu) return y;
  const ValueId r = NewQuantValue(out_name, a.out_shape, static_cast<float>(sy),
                                  zy8, y_uint8);
  ReluParams rp;
  rp.zero_point = zy8;
  AddNode(absl::StrCat(a.name, "_relu"), OpKind::kRelu, {y}, {r}, rp);
  return r;
}

// Q(DQ(x)) with different parameters: an Add whose second operand has a
// zero multiplier is exactly a requantization with a 14-bit multiplier:
//   y = clamp(((x * m + bias) >> shift) + zy), bias = -zx * m + 2^(shift-1).
absl::StatusOr<ValueId> Importer::EmitRequant(ValueId x, double sy, int32_t zy8,
                                              bool y_uint8,
                                              const std::string& out_name) {
  const Value& v = g_.values[x];
  absl::StatusOr<AddParams> p = ComputeAddParams(
      v.scale, v.zero_point, v.scale, v.zero_point, sy, zy8, /*relu=*/false);
  if (!p.ok())
    return NodeError(absl::StrCat("requantization: ", p.status().message()));
  p->bias += v.zero_point * p->multiplier_b;
  p->multiplier_b = 0;
  const ValueId y =
      NewQuantValue(out_name, v.shape, static_cast<float>(sy), zy8, y_uint8);
  AddNode(label_, OpKind::kAdd, {x, x}, {y}, *p);
  return y;
}

absl::StatusOr<ValueId> Importer::EmitPending(const PendingOp& p, double sy,
                                              int32_t zy8, bool y_uint8,
                                              const std::string& out_name) {
  switch (p.kind) {
    case PendingOp::Kind::kConv:
      return EmitConv(p.conv, sy, zy8, y_uint8, p.relu, out_name);
    case PendingOp::Kind::kAdd:
      return EmitAdd(p.add, sy, zy8, y_uint8, p.relu, out_name);
    case PendingOp::Kind::kGap:
      return EmitGap(p.gap, sy, zy8, y_uint8, p.relu, out_name);
  }
  return absl::InternalError("unknown pending op");
}

// ---------------------------------------------------------------------------
// Op handlers.

int32_t ToInt8Domain(int64_t zp, bool is_uint8) {
  return static_cast<int32_t>(is_uint8 ? zp - 128 : zp);
}

absl::Status Importer::HandleConstant() {
  const onnx::AttributeProto* a = FindAttr(*node_, "value");
  ConstTensor c;
  if (a != nullptr && a->has_t()) {
    absl::StatusOr<ConstTensor> d = DecodeTensor(a->t(), "Constant value");
    if (!d.ok()) return Annotate(d.status());
    c = std::move(d).value();
  } else if ((a = FindAttr(*node_, "value_float")) != nullptr) {
    c.dtype = TP::FLOAT;
    c.f = {a->f()};
  } else if ((a = FindAttr(*node_, "value_floats")) != nullptr) {
    c.dtype = TP::FLOAT;
    c.f.assign(a->floats().begin(), a->floats().end());
    c.dims = {static_cast<int64_t>(c.f.size())};
  } else if ((a = FindAttr(*node_, "value_int")) != nullptr) {
    c.dtype = TP::INT64;
    c.i = {a->i()};
  } else if ((a = FindAttr(*node_, "value_ints")) != nullptr) {
    c.dtype = TP::INT64;
    c.i.assign(a->ints().begin(), a->ints().end());
    c.dims = {static_cast<int64_t>(c.i.size())};
  } else {
    return NodeError("unsupported Constant form");
  }
  Sym s;
  s.kind = SymKind::kConst;
  s.shape = c.dims;
  s.index = static_cast<int>(consts_.size());
  consts_.push_back(std::move(c));
  return Define(0, std::move(s));
}

absl::Status Importer::HandleQuantizeLinear() {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* x, Input(0));
  const Sym xs = *x;
  int64_t axis = 1;
  if (const onnx::AttributeProto* a = FindAttr(*node_, "axis")) axis = a->i();
  if (xs.kind == SymKind::kConst) {
    // Constant folding (weights quantized in the graph).
    const ConstTensor& src = consts_[xs.index];
    if (src.dtype != TP::FLOAT) {
      return NodeError(
          absl::StrCat("input must be float32, got ", OnnxTypeName(src.dtype)));
    }
    ConstTensor out;
    out.dims = src.dims;
    // Read per-axis params against a same-shaped placeholder of the output
    // type.
    VTASERVE_ASSIGN_OR_RETURN(const Sym* zsym, Input(2, false));
    int32_t out_type = TP::UINT8;
    if (zsym != nullptr) {
      VTASERVE_ASSIGN_OR_RETURN(const ConstTensor* z,
                                ConstInput(2, "zero point"));
      out_type = z->dtype;
    }
    if (out_type != TP::UINT8 && out_type != TP::INT8) {
      return NodeError(absl::StrCat("zero point must be uint8 or int8, got ",
                                    OnnxTypeName(out_type)));
    }
    out.dtype = out_type;
    const int idx = static_cast<int>(consts_.size());
    consts_.push_back(std::move(out));
    consts_[idx].i.assign(src.f.size(), 0);
    absl::StatusOr<QuantConst> q = ReadQuantConst(
        idx, 1, 2, static_cast<int>(axis), "QuantizeLinear input");
    if (!q.ok()) return q.status();
    const ConstTensor& in = consts_[xs.index];
    ConstTensor& o = consts_[idx];
    const int64_t lo = out_type == TP::UINT8 ? 0 : -128;
    const int64_t hi = out_type == TP::UINT8 ? 255 : 127;
    int64_t inner = 1, axis_len = 1;
    if (q->axis >= 0) {
      axis_len = o.dims[q->axis];
      for (size_t d = q->axis + 1; d < o.dims.size(); ++d) inner *= o.dims[d];
    }
    for (int64_t k = 0; k < static_cast<int64_t>(in.f.size()); ++k) {
      const int64_t ch = q->axis >= 0 ? (k / inner) % axis_len : 0;
      const float v =
          std::nearbyint(in.f[k] / static_cast<float>(q->scale[ch]));
      const double r =
          std::isnan(v) ? 0.0 : static_cast<double>(v) + q->zero_point[ch];
      o.i[k] = static_cast<int64_t>(std::clamp<double>(r, lo, hi));
    }
    Sym s;
    s.kind = SymKind::kConst;
    s.shape = o.dims;
    s.index = idx;
    return Define(0, std::move(s));
  }
  VTASERVE_ASSIGN_OR_RETURN(const double sy, ScalarScale(1, "y_scale"));
  VTASERVE_ASSIGN_OR_RETURN(auto zp,
                            ScalarZeroPoint(2, TP::UINT8, "y_zero_point"));
  const bool y_uint8 = zp.second == TP::UINT8;
  const int32_t zy8 = ToInt8Domain(zp.first, y_uint8);
  const std::string out_name = node_->output_size() > 0 ? node_->output(0) : "";
  Sym out;
  out.kind = SymKind::kQuant;
  switch (xs.kind) {
    case SymKind::kFloat: {
      const ValueId y = NewQuantValue(out_name, g_.values[xs.value].shape,
                                      static_cast<float>(sy), zy8, y_uint8);
      QuantizeParams p;
      p.scale = static_cast<float>(sy);
      p.zero_point = zy8;
      AddNode(label_, OpKind::kQuantize, {xs.value}, {y}, p);
      out.value = y;
      break;
    }
    case SymKind::kDequant: {
      const Value& v = g_.values[xs.value];
      if (meta_[xs.value].is_uint8 == y_uint8 &&
          v.scale == static_cast<float>(sy) && v.zero_point == zy8) {
        out.value = xs.value;  // Q(DQ(x)) with equal parameters: x itself
        break;
      }
      absl::StatusOr<ValueId> y =
          EmitRequant(xs.value, sy, zy8, y_uint8, out_name);
      if (!y.ok()) return y.status();
      out.value = *y;
      break;
    }
    case SymKind::kPending: {
      absl::StatusOr<ValueId> y =
          EmitPending(pending_[xs.index], sy, zy8, y_uint8, out_name);
      if (!y.ok()) return y.status();
      out.value = *y;
      break;
    }
    default:
      return NodeError(absl::StrCat("input '", node_->input(0),
                                    "' must be float, got ",
                                    SymKindName(xs.kind), " (dtype mismatch)"));
  }
  out.shape = g_.values[out.value].shape;
  return Define(0, std::move(out));
}

absl::Status Importer::HandleDequantizeLinear() {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* x, Input(0));
  const Sym xs = *x;
  int64_t axis = 1;
  if (const onnx::AttributeProto* a = FindAttr(*node_, "axis")) axis = a->i();
  if (xs.kind == SymKind::kConst) {
    const ConstTensor& c = consts_[xs.index];
    if (c.dtype != TP::INT8 && c.dtype != TP::UINT8 && c.dtype != TP::INT32) {
      return NodeError(absl::StrCat("cannot dequantize a ",
                                    OnnxTypeName(c.dtype), " constant"));
    }
    if (axis < -kMaxRank || axis > kMaxRank) {
      return NodeError(absl::StrCat("bad quantization axis ", axis));
    }
    absl::StatusOr<QuantConst> q =
        ReadQuantConst(xs.index, 1, 2, static_cast<int>(axis),
                       absl::StrCat("'", node_->input(0), "'"));
    if (!q.ok()) return q.status();
    if (c.dtype == TP::INT32) {
      for (int64_t z : q->zero_point) {
        if (z != 0) return NodeError("int32 zero point must be 0");
      }
    }
    Sym s;
    s.kind = SymKind::kDequantConst;
    s.shape = c.dims;
    s.index = static_cast<int>(qconsts_.size());
    qconsts_.push_back(std::move(q).value());
    return Define(0, std::move(s));
  }
  if (xs.kind != SymKind::kQuant) {
    return NodeError(absl::StrCat("input '", node_->input(0),
                                  "' must be a quantized tensor, got ",
                                  SymKindName(xs.kind)));
  }
  VTASERVE_ASSIGN_OR_RETURN(const double s, ScalarScale(1, "x_scale"));
  const int32_t default_type = meta_[xs.value].is_uint8 ? TP::UINT8 : TP::INT8;
  VTASERVE_ASSIGN_OR_RETURN(auto zp,
                            ScalarZeroPoint(2, default_type, "x_zero_point"));
  const bool is_u8 = zp.second == TP::UINT8;
  VTASERVE_RETURN_IF_ERROR(
      BindQuant(xs.value, s, ToInt8Domain(zp.first, is_u8), is_u8, "input"));
  Sym out;
  out.kind = SymKind::kDequant;
  out.value = xs.value;
  out.shape = xs.shape;
  return Define(0, std::move(out));
}

// Reads (scale, zero point) inputs for a quantized activation input and binds
// them to its value. Returns the value.
absl::Status RequireQuant(
    const Sym& s, absl::string_view role, const std::string& name,
    const std::function<absl::Status(absl::string_view)>& err) {
  if (s.kind != SymKind::kQuant) {
    return err(absl::StrCat(role, " '", name,
                            "' must be a quantized tensor, got ",
                            SymKindName(s.kind)));
  }
  return absl::OkStatus();
}

absl::Status Importer::DefineConvResult(ConvSpec spec, int y_scale_input) {
  if (y_scale_input >= 0) {
    VTASERVE_ASSIGN_OR_RETURN(const double sy,
                              ScalarScale(y_scale_input, "y_scale"));
    VTASERVE_ASSIGN_OR_RETURN(
        auto zy, ScalarZeroPoint(y_scale_input + 1, TP::UINT8, "y_zero_point"));
    const bool u8 = zy.second == TP::UINT8;
    VTASERVE_ASSIGN_OR_RETURN(const ValueId y,
                              EmitConv(spec, sy, ToInt8Domain(zy.first, u8), u8,
                                       /*relu=*/false, node_->output(0)));
    return DefineQuant(y, spec.out_shape);
  }
  PendingOp p;
  p.kind = PendingOp::Kind::kConv;
  p.label = label_;
  p.conv = std::move(spec);
  std::vector<int64_t> shape = p.conv.out_shape;
  return DefinePending(std::move(p), std::move(shape));
}

absl::Status Importer::HandleConv(bool qlinear) {
  int64_t group = 1;
  if (const onnx::AttributeProto* a = FindAttr(*node_, "group")) group = a->i();
  if (group < 1 || group > kMaxDim) {
    return NodeError(absl::StrCat("bad group ", group));
  }
  const int x_in = 0;
  const int w_in = qlinear ? 3 : 1;
  const int b_in = qlinear ? 8 : 2;
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(x_in));
  const Sym x = *xp;
  auto err = [this](absl::string_view m) { return NodeError(m); };
  QuantConst w;
  const ConstTensor* bias_int = nullptr;
  const ConstTensor* bias_float = nullptr;
  std::optional<QuantConst> bias_dq;
  if (qlinear) {
    VTASERVE_RETURN_IF_ERROR(RequireQuant(x, "input", node_->input(0), err));
    VTASERVE_ASSIGN_OR_RETURN(const double sx, ScalarScale(1, "x_scale"));
    const int32_t dt = meta_[x.value].is_uint8 ? TP::UINT8 : TP::INT8;
    VTASERVE_ASSIGN_OR_RETURN(auto zx, ScalarZeroPoint(2, dt, "x_zero_point"));
    const bool u8 = zx.second == TP::UINT8;
    VTASERVE_RETURN_IF_ERROR(
        BindQuant(x.value, sx, ToInt8Domain(zx.first, u8), u8, "input"));
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ws, Input(w_in));
    if (ws->kind != SymKind::kConst) {
      return NodeError("weights must be a constant");
    }
    VTASERVE_ASSIGN_OR_RETURN(w, ReadQuantConst(ws->index, 4, 5, 0, "weights"));
    VTASERVE_ASSIGN_OR_RETURN(const Sym* bs, Input(b_in, false));
    if (bs != nullptr) {
      VTASERVE_ASSIGN_OR_RETURN(bias_int, ConstInput(b_in, "bias"));
    }
  } else {
    if (x.kind != SymKind::kDequant) {
      return NodeError(absl::StrCat(
          "unsupported pattern: float Conv input '", node_->input(0), "' is ",
          SymKindName(x.kind), ", not a DequantizeLinear output"));
    }
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ws, Input(w_in));
    if (ws->kind != SymKind::kDequantConst) {
      return NodeError(absl::StrCat("unsupported pattern: float Conv weights '",
                                    node_->input(w_in), "' are ",
                                    SymKindName(ws->kind),
                                    ", not DequantizeLinear of a constant"));
    }
    w = qconsts_[ws->index];
    VTASERVE_ASSIGN_OR_RETURN(const Sym* bs, Input(b_in, false));
    if (bs != nullptr) {
      if (bs->kind == SymKind::kDequantConst) {
        bias_dq = qconsts_[bs->index];
      } else if (bs->kind == SymKind::kConst) {
        bias_float = &consts_[bs->index];
      } else {
        return NodeError("bias must be a constant or a dequantized constant");
      }
    }
  }
  const Value& xv = g_.values[x.value];
  if (xv.shape.size() != 4 || xv.shape[0] != 1) {
    return NodeError(absl::StrCat("input must be NCHW with N = 1, got ",
                                  ShapeToString(xv.shape)));
  }
  const ConstTensor& wd = consts_[w.const_index];
  if (wd.dims.size() != 4 || wd.dims[2] < 1 || wd.dims[3] < 1 ||
      wd.dims[2] > kMaxWindow || wd.dims[3] > kMaxWindow) {
    return NodeError(absl::StrCat("weights must be [M, C/group, kH, kW], got ",
                                  ShapeToString(wd.dims)));
  }
  if (const onnx::AttributeProto* a = FindAttr(*node_, "kernel_shape")) {
    if (a->ints_size() != 2 || a->ints(0) != wd.dims[2] ||
        a->ints(1) != wd.dims[3]) {
      return NodeError("kernel_shape does not match the weights");
    }
  }
  VTASERVE_ASSIGN_OR_RETURN(
      const Window win,
      ParseWindow(xv.shape, static_cast<int>(wd.dims[2]),
                  static_cast<int>(wd.dims[3]), /*pool=*/false));
  ConvSpec spec;
  VTASERVE_RETURN_IF_ERROR(
      BuildConvSpec(x, w, static_cast<int>(group), win, bias_int,
                    bias_dq ? &*bias_dq : nullptr, bias_float, spec));
  return DefineConvResult(std::move(spec), /*y_scale_input=*/qlinear ? 6 : -1);
}

absl::Status Importer::HandleMatMul(bool qlinear) {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  auto err = [this](absl::string_view m) { return NodeError(m); };
  QuantConst w;
  if (qlinear) {
    VTASERVE_RETURN_IF_ERROR(RequireQuant(x, "input", node_->input(0), err));
    VTASERVE_ASSIGN_OR_RETURN(const double sx, ScalarScale(1, "a_scale"));
    const int32_t dt = meta_[x.value].is_uint8 ? TP::UINT8 : TP::INT8;
    VTASERVE_ASSIGN_OR_RETURN(auto zx, ScalarZeroPoint(2, dt, "a_zero_point"));
    const bool u8 = zx.second == TP::UINT8;
    VTASERVE_RETURN_IF_ERROR(
        BindQuant(x.value, sx, ToInt8Domain(zx.first, u8), u8, "input"));
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ws, Input(3));
    if (ws->kind != SymKind::kConst)
      return NodeError("weights must be a constant");
    VTASERVE_ASSIGN_OR_RETURN(w, ReadQuantConst(ws->index, 4, 5, 1, "weights"));
  } else {
    if (x.kind != SymKind::kDequant) {
      return NodeError(absl::StrCat(
          "unsupported pattern: float MatMul input '", node_->input(0), "' is ",
          SymKindName(x.kind), ", not a DequantizeLinear output"));
    }
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ws, Input(1));
    if (ws->kind != SymKind::kDequantConst) {
      return NodeError(
          "unsupported pattern: float MatMul weights must be "
          "DequantizeLinear of a constant");
    }
    w = qconsts_[ws->index];
  }
  ConvSpec spec;
  VTASERVE_RETURN_IF_ERROR(BuildDenseSpec(x, w, /*w_is_nk=*/false, 1.0, nullptr,
                                          nullptr, nullptr, 1.0, spec));
  return DefineConvResult(std::move(spec), /*y_scale_input=*/qlinear ? 6 : -1);
}

absl::Status Importer::HandleGemm(bool qgemm) {
  double alpha = 1.0, beta = 1.0;
  int64_t trans_a = 0, trans_b = 0;
  if (const onnx::AttributeProto* a = FindAttr(*node_, "alpha")) alpha = a->f();
  if (const onnx::AttributeProto* a = FindAttr(*node_, "beta")) beta = a->f();
  if (const onnx::AttributeProto* a = FindAttr(*node_, "transA"))
    trans_a = a->i();
  if (const onnx::AttributeProto* a = FindAttr(*node_, "transB"))
    trans_b = a->i();
  if (trans_a != 0) return NodeError("transA = 1 is unsupported");
  if (qgemm && beta != 1.0) return NodeError("QGemm has no beta");
  if (!std::isfinite(beta)) return NodeError("beta must be finite");
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  auto err = [this](absl::string_view m) { return NodeError(m); };
  QuantConst w;
  const ConstTensor* bias_int = nullptr;
  const ConstTensor* bias_float = nullptr;
  std::optional<QuantConst> bias_dq;
  const int w_axis = trans_b != 0 ? 0 : 1;
  if (qgemm) {
    VTASERVE_RETURN_IF_ERROR(RequireQuant(x, "input", node_->input(0), err));
    VTASERVE_ASSIGN_OR_RETURN(const double sx, ScalarScale(1, "a_scale"));
    const int32_t dt = meta_[x.value].is_uint8 ? TP::UINT8 : TP::INT8;
    VTASERVE_ASSIGN_OR_RETURN(auto zx, ScalarZeroPoint(2, dt, "a_zero_point"));
    const bool u8 = zx.second == TP::UINT8;
    VTASERVE_RETURN_IF_ERROR(
        BindQuant(x.value, sx, ToInt8Domain(zx.first, u8), u8, "input"));
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ws, Input(3));
    if (ws->kind != SymKind::kConst)
      return NodeError("weights must be a constant");
    VTASERVE_ASSIGN_OR_RETURN(
        w, ReadQuantConst(ws->index, 4, 5, w_axis, "weights"));
    VTASERVE_ASSIGN_OR_RETURN(const Sym* bs, Input(6, false));
    if (bs != nullptr) {
      VTASERVE_ASSIGN_OR_RETURN(bias_int, ConstInput(6, "bias"));
    }
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ys, Input(7, false));
    if (ys == nullptr) {
      return NodeError("QGemm with a float output (no y_scale) is unsupported");
    }
  } else {
    if (x.kind != SymKind::kDequant) {
      return NodeError(absl::StrCat(
          "unsupported pattern: float Gemm input '", node_->input(0), "' is ",
          SymKindName(x.kind), ", not a DequantizeLinear output"));
    }
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ws, Input(1));
    if (ws->kind != SymKind::kDequantConst) {
      return NodeError(
          "unsupported pattern: float Gemm weights must be "
          "DequantizeLinear of a constant");
    }
    w = qconsts_[ws->index];
    VTASERVE_ASSIGN_OR_RETURN(const Sym* bs, Input(2, false));
    if (bs != nullptr) {
      if (bs->kind == SymKind::kDequantConst) {
        bias_dq = qconsts_[bs->index];
      } else if (bs->kind == SymKind::kConst) {
        bias_float = &consts_[bs->index];
      } else {
        return NodeError("bias must be a constant or a dequantized constant");
      }
    }
  }
  ConvSpec spec;
  // QGemm's int32 bias is in a_scale * b_scale units, unscaled by alpha.
  VTASERVE_RETURN_IF_ERROR(BuildDenseSpec(
      x, w, trans_b != 0, alpha, bias_int, bias_dq ? &*bias_dq : nullptr,
      bias_float, qgemm ? 1.0 / alpha : beta, spec));
  return DefineConvResult(std::move(spec), /*y_scale_input=*/qgemm ? 7 : -1);
}

absl::Status Importer::HandleAdd(bool qlinear) {
  if (qlinear) {
    VTASERVE_ASSIGN_OR_RETURN(const Sym* ap, Input(0));
    const Sym a = *ap;
    VTASERVE_ASSIGN_OR_RETURN(const Sym* bp, Input(3));
    const Sym b = *bp;
    auto err = [this](absl::string_view m) { return NodeError(m); };
    VTASERVE_RETURN_IF_ERROR(RequireQuant(a, "input A", node_->input(0), err));
    VTASERVE_RETURN_IF_ERROR(RequireQuant(b, "input B", node_->input(3), err));
    VTASERVE_ASSIGN_OR_RETURN(const double sa, ScalarScale(1, "A_scale"));
    VTASERVE_ASSIGN_OR_RETURN(
        auto za,
        ScalarZeroPoint(2, meta_[a.value].is_uint8 ? TP::UINT8 : TP::INT8,
                        "A_zero_point"));
    VTASERVE_ASSIGN_OR_RETURN(const double sb, ScalarScale(4, "B_scale"));
    VTASERVE_ASSIGN_OR_RETURN(
        auto zb,
        ScalarZeroPoint(5, meta_[b.value].is_uint8 ? TP::UINT8 : TP::INT8,
                        "B_zero_point"));
    VTASERVE_ASSIGN_OR_RETURN(const double sy, ScalarScale(6, "C_scale"));
    VTASERVE_ASSIGN_OR_RETURN(auto zy,
                              ScalarZeroPoint(7, TP::UINT8, "C_zero_point"));
    const bool ua = za.second == TP::UINT8, ub = zb.second == TP::UINT8,
               uy = zy.second == TP::UINT8;
    VTASERVE_RETURN_IF_ERROR(
        BindQuant(a.value, sa, ToInt8Domain(za.first, ua), ua, "input A"));
    VTASERVE_RETURN_IF_ERROR(
        BindQuant(b.value, sb, ToInt8Domain(zb.first, ub), ub, "input B"));
    if (g_.values[a.value].shape != g_.values[b.value].shape) {
      return NodeError(absl::StrCat(
          "operand shapes ", ShapeToString(g_.values[a.value].shape), " and ",
          ShapeToString(g_.values[b.value].shape),
          " differ (broadcasting is unsupported)"));
    }
    AddSpec spec{label_, a.value, b.value, g_.values[a.value].shape};
    VTASERVE_ASSIGN_OR_RETURN(const ValueId y,
                              EmitAdd(spec, sy, ToInt8Domain(zy.first, uy), uy,
                                      false, node_->output(0)));
    return DefineQuant(y, spec.shape);
  }
  VTASERVE_ASSIGN_OR_RETURN(const Sym* ap, Input(0));
  const Sym a = *ap;
  VTASERVE_ASSIGN_OR_RETURN(const Sym* bp, Input(1));
  const Sym b = *bp;
  if (a.kind != SymKind::kDequant || b.kind != SymKind::kDequant) {
    return NodeError(
        absl::StrCat("unsupported pattern: float Add of ", SymKindName(a.kind),
                     " and ", SymKindName(b.kind),
                     " (both inputs must be DequantizeLinear outputs)"));
  }
  if (g_.values[a.value].shape != g_.values[b.value].shape) {
    return NodeError(
        absl::StrCat("operand shapes ", ShapeToString(g_.values[a.value].shape),
                     " and ", ShapeToString(g_.values[b.value].shape),
                     " differ (broadcasting is unsupported)"));
  }
  PendingOp p;
  p.kind = PendingOp::Kind::kAdd;
  p.label = label_;
  p.add = AddSpec{label_, a.value, b.value, g_.values[a.value].shape};
  std::vector<int64_t> shape = p.add.shape;
  return DefinePending(std::move(p), std::move(shape));
}

absl::Status Importer::HandleRelu() {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  if (x.kind == SymKind::kPending) {
    PendingOp p = pending_[x.index];
    p.relu = true;
    return DefinePending(std::move(p), x.shape);
  }
  if (x.kind != SymKind::kQuant && x.kind != SymKind::kDequant) {
    return NodeError(
        absl::StrCat("unsupported pattern: Relu of ", SymKindName(x.kind)));
  }
  const Value& v = g_.values[x.value];
  const ValueId y = NewQuantValue(node_->output(0), v.shape, v.scale,
                                  v.zero_point, meta_[x.value].is_uint8);
  ReluParams p;
  p.zero_point = g_.values[x.value].zero_point;
  AddNode(label_, OpKind::kRelu, {x.value}, {y}, p);
  Sym out = x;
  out.value = y;
  return Define(0, std::move(out));
}

absl::Status Importer::HandleMaxPool() {
  if (node_->output_size() > 1 && !node_->output(1).empty()) {
    return NodeError("MaxPool indices output is unsupported");
  }
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  if (x.kind != SymKind::kQuant && x.kind != SymKind::kDequant) {
    return NodeError(
        absl::StrCat("unsupported pattern: MaxPool of ", SymKindName(x.kind),
                     " (float MaxPool must read a DequantizeLinear output)"));
  }
  const Value& v = g_.values[x.value];
  if (v.shape.size() != 4) {
    return NodeError(
        absl::StrCat("input must be NCHW, got ", ShapeToString(v.shape)));
  }
  const onnx::AttributeProto* ks = FindAttr(*node_, "kernel_shape");
  if (ks == nullptr || ks->ints_size() != 2 || ks->ints(0) < 1 ||
      ks->ints(1) < 1 || ks->ints(0) > kMaxWindow || ks->ints(1) > kMaxWindow) {
    return NodeError("kernel_shape must hold 2 positive values");
  }
  VTASERVE_ASSIGN_OR_RETURN(
      const Window w,
      ParseWindow(v.shape, static_cast<int>(ks->ints(0)),
                  static_cast<int>(ks->ints(1)), /*pool=*/true));
  PoolParams p;
  p.kernel_h = w.kh;
  p.kernel_w = w.kw;
  p.stride_h = w.sh;
  p.stride_w = w.sw;
  p.pad_top = w.pt;
  p.pad_left = w.pl;
  p.pad_bottom = w.pb;
  p.pad_right = w.pr;
  const std::vector<int64_t> shape = {v.shape[0], v.shape[1], w.oh, w.ow};
  if (absl::StatusOr<int64_t> n = CheckedElements(shape, "output"); !n.ok()) {
    return NodeError(n.status().message());
  }
  const ValueId y = NewQuantValue(node_->output(0), shape, v.scale,
                                  v.zero_point, meta_[x.value].is_uint8);
  AddNode(label_, OpKind::kMaxPool, {x.value}, {y}, p);
  Sym out = x;
  out.value = y;
  out.shape = shape;
  return Define(0, std::move(out));
}

absl::Status Importer::HandleGlobalAveragePool(bool qlinear) {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  auto err = [this](absl::string_view m) { return NodeError(m); };
  if (qlinear) {
    VTASERVE_RETURN_IF_ERROR(RequireQuant(x, "input", node_->input(0), err));
    if (const onnx::AttributeProto* a = FindAttr(*node_, "channels_last")) {
      if (a->i() != 0) return NodeError("channels_last = 1 is unsupported");
    }
  } else if (x.kind != SymKind::kDequant) {
    return NodeError(
        absl::StrCat("unsupported pattern: float GlobalAveragePool of ",
                     SymKindName(x.kind)));
  }
  const Value& v = g_.values[x.value];
  if (v.shape.size() != 4) {
    return NodeError(
        absl::StrCat("input must be NCHW, got ", ShapeToString(v.shape)));
  }
  GapSpec spec{
      label_, x.value, {v.shape[0], v.shape[1], 1, 1}, v.shape[2] * v.shape[3]};
  if (qlinear) {
    VTASERVE_ASSIGN_OR_RETURN(const double sx, ScalarScale(1, "x_scale"));
    VTASERVE_ASSIGN_OR_RETURN(
        auto zx,
        ScalarZeroPoint(2, meta_[x.value].is_uint8 ? TP::UINT8 : TP::INT8,
                        "x_zero_point"));
    const bool ux = zx.second == TP::UINT8;
    VTASERVE_RETURN_IF_ERROR(
        BindQuant(x.value, sx, ToInt8Domain(zx.first, ux), ux, "input"));
    VTASERVE_ASSIGN_OR_RETURN(const double sy, ScalarScale(3, "y_scale"));
    VTASERVE_ASSIGN_OR_RETURN(auto zy,
                              ScalarZeroPoint(4, TP::UINT8, "y_zero_point"));
    const bool uy = zy.second == TP::UINT8;
    VTASERVE_ASSIGN_OR_RETURN(const ValueId y,
                              EmitGap(spec, sy, ToInt8Domain(zy.first, uy), uy,
                                      false, node_->output(0)));
    return DefineQuant(y, spec.out_shape);
  }
  PendingOp p;
  p.kind = PendingOp::Kind::kGap;
  p.label = label_;
  p.gap = std::move(spec);
  std::vector<int64_t> shape = p.gap.out_shape;
  return DefinePending(std::move(p), std::move(shape));
}

absl::Status Importer::HandleReshape(bool flatten) {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  if (x.kind != SymKind::kQuant && x.kind != SymKind::kDequant &&
      x.kind != SymKind::kFloat) {
    return NodeError(absl::StrCat("unsupported pattern: ", op_type_, " of ",
                                  SymKindName(x.kind)));
  }
  const Value& v = g_.values[x.value];
  const int64_t total = NumElements(v.shape);
  std::vector<int64_t> shape;
  if (flatten) {
    int64_t axis = 1;
    if (const onnx::AttributeProto* a = FindAttr(*node_, "axis")) axis = a->i();
    const int64_t rank = static_cast<int64_t>(v.shape.size());
    if (axis < 0) axis += rank;
    if (axis < 0 || axis > rank)
      return NodeError(absl::StrCat("bad axis ", axis));
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= v.shape[d];
    shape = {outer, outer == 0 ? 0 : total / outer};
  } else {
    VTASERVE_ASSIGN_OR_RETURN(const ConstTensor* s, ConstInput(1, "shape"));
    if (s->dtype != TP::INT64 || s->dims.size() != 1 || s->size() > kMaxRank) {
      return NodeError("shape must be a 1-D int64 constant of rank <= 8");
    }
    int64_t allowzero = 0;
    if (const onnx::AttributeProto* a = FindAttr(*node_, "allowzero"))
      allowzero = a->i();
    int infer = -1;
    int64_t known = 1;
    for (int64_t k = 0; k < s->size(); ++k) {
      int64_t d = s->i[k];
      if (d == 0 && allowzero == 0) {
        if (k >= static_cast<int64_t>(v.shape.size())) {
          return NodeError("shape copies a dimension the input lacks");
        }
        d = v.shape[k];
      }
      if (d == -1) {
        if (infer >= 0) return NodeError("shape has more than one -1");
        infer = static_cast<int>(k);
      } else if (d < 0 || d > kMaxDim) {
        return NodeError(absl::StrCat("bad target dimension ", d));
      } else {
        known *= d;
        if (known > kMaxElements) return NodeError("target shape too large");
      }
      shape.push_back(d);
    }
    if (infer >= 0) {
      if (known == 0 || total % known != 0) {
        return NodeError("cannot infer the -1 dimension");
      }
      shape[infer] = total / known;
    }
  }
  if (NumElements(shape) != total) {
    return NodeError(absl::StrCat("cannot reshape ", ShapeToString(v.shape),
                                  " to ", ShapeToString(shape)));
  }
  ValueId y;
  if (x.kind == SymKind::kFloat) {
    y = NewValue(node_->output(0), DataType::kFloat32, shape);
  } else {
    y = NewQuantValue(node_->output(0), shape, v.scale, v.zero_point,
                      meta_[x.value].is_uint8);
  }
  AddNode(label_, OpKind::kReshape, {x.value}, {y}, NoParams{});
  Sym out = x;
  out.value = y;
  out.shape = shape;
  return Define(0, std::move(out));
}

absl::Status Importer::HandleSoftmax() {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  const Sym x = *xp;
  if (x.kind != SymKind::kFloat && x.kind != SymKind::kDequant) {
    return NodeError(
        absl::StrCat("unsupported pattern: Softmax of ", SymKindName(x.kind)));
  }
  VTASERVE_ASSIGN_OR_RETURN(const ValueId f, MaterializeFloat(x));
  const std::vector<int64_t> shape = g_.values[f].shape;
  const int64_t rank = static_cast<int64_t>(shape.size());
  int64_t axis = opset_ >= 13 ? -1 : 1;
  if (const onnx::AttributeProto* a = FindAttr(*node_, "axis")) axis = a->i();
  if (axis < 0) axis += rank;
  bool last = axis == rank - 1;
  if (!last && opset_ < 13 && axis >= 0 && axis < rank) {
    // Old semantics: flatten from `axis`; fine when the rest are all 1.
    last = true;
    for (int64_t d = axis + 1; d < rank; ++d) last = last && shape[d] == 1;
  }
  if (rank == 0 || !last) {
    return NodeError("Softmax is supported along the last axis only");
  }
  const ValueId y = NewValue(node_->output(0), DataType::kFloat32, shape);
  AddNode(label_, OpKind::kSoftmax, {f}, {y}, NoParams{});
  Sym out;
  out.kind = SymKind::kFloat;
  out.value = y;
  out.shape = shape;
  return Define(0, std::move(out));
}

absl::Status Importer::HandleIdentity() {
  VTASERVE_ASSIGN_OR_RETURN(const Sym* xp, Input(0));
  return Define(0, *xp);
}

absl::Status Importer::HandleNode() {
  std::string domain = node_->domain();
  if (domain == "ai.onnx") domain.clear();
  const std::string& op = node_->op_type();
  if (domain.empty()) {
    if (op == "Constant") return HandleConstant();
    if (op == "QuantizeLinear") return HandleQuantizeLinear();
    if (op == "DequantizeLinear") return HandleDequantizeLinear();
    if (op == "Conv") return HandleConv(false);
    if (op == "QLinearConv") return HandleConv(true);
    if (op == "MatMul") return HandleMatMul(false);
    if (op == "QLinearMatMul") return HandleMatMul(true);
    if (op == "Gemm") return HandleGemm(false);
    if (op == "Add") return HandleAdd(false);
    if (op == "Relu") return HandleRelu();
    if (op == "MaxPool") return HandleMaxPool();
    if (op == "GlobalAveragePool") return HandleGlobalAveragePool(false);
    if (op == "Flatten") return HandleReshape(true);
    if (op == "Reshape") return HandleReshape(false);
    if (op == "Softmax") return HandleSoftmax();
    if (op == "Identity") return HandleIdentity();
  } else if (domain == "com.microsoft") {
    if (op == "QGemm") return HandleGemm(true);
    if (op == "QLinearAdd") return HandleAdd(true);
    if (op == "QLinearGlobalAveragePool") return HandleGlobalAveragePool(true);
  }
  return NodeError(absl::StrCat(
      "unsupported op ", domain.empty() ? "" : absl::StrCat(domain, "."), op));
}

// ---------------------------------------------------------------------------
// Graph boundary.

absl::Status Importer::AddGraphInputs() {
  const onnx::GraphProto& graph = model_.graph();
  for (const onnx::ValueInfoProto& in : graph.input()) {
    if (initializers_.count(in.name()) > 0) continue;  // IR < 4 style
    const std::string& name = in.name();
    auto fail = [&](absl::string_view what) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph input '", name, "': ", what));
    };
    if (name.empty()) return fail("has no name");
    if (syms_.count(name) > 0) return fail("is listed twice");
    if (!in.type().has_tensor_type()) return fail("is not a tensor");
    const auto& tt = in.type().tensor_type();
    DataType dtype;
    switch (tt.elem_type()) {
      case TP::FLOAT:
        dtype = DataType::kFloat32;
        break;
      case TP::UINT8:
        dtype = DataType::kUInt8;
        break;
      case TP::INT8:
        dtype = DataType::kInt8;
        break;
      default:
        return fail(absl::StrCat("element type ", OnnxTypeName(tt.elem_type()),
                                 " is unsupported (float32, uint8 or int8)"));
    }
    if (!tt.has_shape()) return fail("has no shape");
    std::vector<int64_t> shape;
    for (int d = 0; d < tt.shape().dim_size(); ++d) {
      const auto& dim = tt.shape().dim(d);
      const bool known = dim.has_dim_value() && dim.dim_value() > 0;
      if (d == 0) {
        if (known && dim.dim_value() != 1) {
          return fail(
              absl::StrCat("fixed batch size ", dim.dim_value(),
                           " is unsupported (use 1 or a symbolic batch)"));
        }
        shape.push_back(1);
        continue;
      }
      if (!known) {
        return fail(
            absl::StrCat("dimension ", d, " is not a known positive size"));
      }
      shape.push_back(dim.dim_value());
    }
    if (shape.empty()) return fail("is a scalar");
    if (absl::StatusOr<int64_t> n =
            CheckedElements(shape, absl::StrCat("graph input '", name, "'"));
        !n.ok()) {
      return n.status();
    }
    const ValueId v = NewValue(name, dtype, shape);
    g_.inputs.push_back(v);
    Sym s;
    s.shape = shape;
    if (dtype == DataType::kFloat32) {
      s.kind = SymKind::kFloat;
      s.value = v;
    } else if (dtype == DataType::kInt8) {
      s.kind = SymKind::kQuant;
      s.value = v;
      meta_[v].known = false;
    } else {
      const ValueId c =
          NewValue(absl::StrCat(name, "_int8"), DataType::kInt8, shape);
      meta_[c].is_uint8 = true;
      meta_[c].uint8_source = v;
      AddNode(absl::StrCat(name, "_to_int8"), OpKind::kCast, {v}, {c},
              NoParams{});
      s.kind = SymKind::kQuant;
      s.value = c;
    }
    syms_.emplace(name, std::move(s));
  }
  if (g_.inputs.empty()) {
    return absl::InvalidArgumentError("model has no (non-initializer) inputs");
  }
  return absl::OkStatus();
}

absl::Status Importer::AddGraphOutputs() {
  const onnx::GraphProto& graph = model_.graph();
  if (graph.output_size() == 0)
    return absl::InvalidArgumentError("model has no outputs");
  label_ = "graph output";
  op_type_ = "output";
  for (const onnx::ValueInfoProto& out : graph.output()) {
    const std::string& name = out.name();
    auto it = syms_.find(name);
    if (it == syms_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", name, "' is never produced"));
    }
    const Sym s = it->second;
    ValueId v = -1;
    switch (s.kind) {
      case SymKind::kFloat:
        v = s.value;
        break;
      case SymKind::kDequant: {
        VTASERVE_ASSIGN_OR_RETURN(v, MaterializeFloat(s));
        break;
      }
      case SymKind::kQuant: {
        if (!meta_[s.value].known) {
          return absl::InvalidArgumentError(absl::StrCat(
              "graph output '", name, "' has no quantization parameters"));
        }
        v = s.value;
        if (meta_[s.value].is_uint8) {
          const Value& q = g_.values[s.value];
          const ValueId u =
              NewValue(absl::StrCat(name, "_uint8"), DataType::kUInt8, q.shape,
                       q.scale, q.zero_point + 128);
          AddNode(absl::StrCat(name, "_to_uint8"), OpKind::kCast, {s.value},
                  {u}, NoParams{});
          v = u;
        }
        break;
      }
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            "graph output '", name, "' is ", SymKindName(s.kind),
            " (unsupported pattern: a float op must be followed by "
            "QuantizeLinear, outputs must be computed tensors)"));
    }
    if (std::find(g_.inputs.begin(), g_.inputs.end(), v) != g_.inputs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", name, "' is a graph input"));
    }
    if (std::find(g_.outputs.begin(), g_.outputs.end(), v) !=
        g_.outputs.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat("graph output '", name, "' is listed twice"));
    }
    // The engine value takes the ONNX output name.
    if (g_.values[v].name != name) {
      for (Value& other : g_.values) {
        if (other.name == name)
          other.name = UniqueValueName(absl::StrCat(name, "_internal"));
      }
      value_names_.insert(name);
      g_.values[v].name = name;
    }
    // Check declared element type, if any.
    if (out.type().has_tensor_type() &&
        out.type().tensor_type().elem_type() != 0) {
      const int32_t et = out.type().tensor_type().elem_type();
      const DataType dt = g_.values[v].dtype;
      const bool match = (et == TP::FLOAT && dt == DataType::kFloat32) ||
                         (et == TP::UINT8 && dt == DataType::kUInt8) ||
                         (et == TP::INT8 && dt == DataType::kInt8);
      if (!match) {
        return absl::InvalidArgumentError(absl::StrCat(
            "graph output '", name, "' is declared ", OnnxTypeName(et),
            " but computes ", DataTypeName(dt), " (dtype mismatch)"));
      }
    }
    g_.outputs.push_back(v);
  }
  return absl::OkStatus();
}

absl::StatusOr<ModelGraph> Importer::Run() {
  if (!model_.has_graph())
    return absl::InvalidArgumentError("model has no graph");
  const onnx::GraphProto& graph = model_.graph();
  for (const auto& imp : model_.opset_import()) {
    if (imp.domain().empty() || imp.domain() == "ai.onnx")
      opset_ = imp.version();
  }
  if (opset_ == 0 && model_.opset_import_size() == 0) opset_ = 13;
  if (opset_ < 10) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ONNX opset ", opset_, " is too old (QuantizeLinear needs >= 10)"));
  }
  if (graph.node_size() > kMaxNodes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "graph has ", graph.node_size(), " nodes (at most ", kMaxNodes, ")"));
  }
  for (const TP& init : graph.initializer()) {
    if (init.name().empty())
      return absl::InvalidArgumentError("unnamed initializer");
    // Every initializer, used or not: its shape within bounds and its data
    // the size the shape claims, before anything is allocated for it.
    VTASERVE_RETURN_IF_ERROR(
        CheckTensorData(init, absl::StrCat("initializer '", init.name(), "'")));
    if (!initializers_.emplace(init.name(), &init).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("initializer '", init.name(), "' is listed twice"));
    }
  }
  if (graph.sparse_initializer_size() > 0) {
    return absl::InvalidArgumentError("sparse initializers are unsupported");
  }
  VTASERVE_RETURN_IF_ERROR(AddGraphInputs());
  for (const onnx::ValueInfoProto& in : graph.input()) {
    value_names_.insert(in.name());
  }
  for (int i = 0; i < graph.node_size(); ++i) {
    node_ = &graph.node(i);
    op_type_ = node_->op_type();
    label_ = node_->name().empty() ? absl::StrCat("op_", i) : node_->name();
    if (node_->output_size() < 1 || node_->output(0).empty()) {
      return NodeError("has no output");
    }
    VTASERVE_RETURN_IF_ERROR(HandleNode());
  }
  node_ = nullptr;
  VTASERVE_RETURN_IF_ERROR(AddGraphOutputs());
  g_.name = options_.model_name;
  if (g_.name.empty()) g_.name = graph.name().empty() ? "model" : graph.name();
  VTASERVE_RETURN_IF_ERROR(g_.Validate());
  return std::move(g_);
}

}  // namespace

absl::StatusOr<ModelGraph> ImportOnnxModel(const onnx::ModelProto& model,
                                           const ImportOptions& options) {
  Importer importer(model, options);
  return importer.Run();
}

absl::StatusOr<ModelGraph> ImportOnnxBytes(absl::string_view bytes,
                                           const ImportOptions& options) {
  if (bytes.size() > static_cast<size_t>(std::numeric_limits<int>::max())) {
    return absl::InvalidArgumentError("model is larger than 2 GiB");
  }
  onnx::ModelProto model;
  if (!model.ParseFromArray(bytes.data(), static_cast<int>(bytes.size()))) {
    return absl::InvalidArgumentError(
        "not a valid ONNX ModelProto (corrupt or truncated protobuf)");
  }
  return ImportOnnxModel(model, options);
}

absl::StatusOr<ModelGraph> ImportOnnxFile(const std::string& path,
                                          const ImportOptions& options) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    const std::string msg =
        absl::StrCat("cannot open model '", path, "': ", std::strerror(err));
    if (err == ENOENT || err == ENOTDIR) return absl::NotFoundError(msg);
    if (err == EACCES) return absl::PermissionDeniedError(msg);
    return absl::InvalidArgumentError(msg);
  }
  std::string bytes;
  char buf[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    bytes.append(buf, got);
    if (bytes.size() > (size_t{1} << 31)) {
      std::fclose(f);
      return absl::InvalidArgumentError(
          absl::StrCat("model '", path, "' is larger than 2 GiB"));
    }
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed) {
    return absl::InvalidArgumentError(
        absl::StrCat("error reading '", path, "'"));
  }
  absl::StatusOr<ModelGraph> g = ImportOnnxBytes(bytes, options);
  if (!g.ok()) return AnnotateStatus(g.status(), path);
  return g;
}

}  // namespace vtaserve::engine
