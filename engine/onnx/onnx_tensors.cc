// ONNX importer: constant decoding, attributes and symbol names.
#include "engine/onnx/importer_internal.h"

namespace vtaserve::engine::onnx_internal {

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

absl::Status CheckScale(double s) {
  if (!std::isfinite(s) || !(s > 0.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("scale ", s, " is not positive and finite"));
  }
  return absl::OkStatus();
}

}  // namespace vtaserve::engine::onnx_internal
