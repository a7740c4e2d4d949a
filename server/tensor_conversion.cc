#include "server/tensor_conversion.h"

#include <cstring>
#include <set>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace vtaserve::server {
namespace {

std::string ExpectedInputs(const engine::ModelInfo& info) {
  std::vector<std::string> names;
  for (const engine::Value& v : info.inputs) names.push_back(v.name);
  return absl::StrCat("[", absl::StrJoin(names, ", "), "]");
}

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ","), "]");
}

bool HasTypedContents(const inference::InferTensorContents& c) {
  return c.bool_contents_size() > 0 || c.int_contents_size() > 0 ||
         c.int64_contents_size() > 0 || c.uint_contents_size() > 0 ||
         c.uint64_contents_size() > 0 || c.fp32_contents_size() > 0 ||
         c.fp64_contents_size() > 0 || c.bytes_contents_size() > 0;
}

// Copies typed contents of `dtype` into `t`.
absl::Status CopyTyped(const inference::ModelInferRequest::InferInputTensor& in,
                       Tensor& t) {
  const inference::InferTensorContents& c = in.contents();
  const int64_t n = t.num_elements();
  auto count_error = [&](absl::string_view field, int64_t got) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input '", in.name(), "': expected ", n, " values in contents.", field,
        " for shape ", ShapeString(t.shape()), ", got ", got));
  };
  // Only the field of the datatype may be set.
  int fields_set =
      (c.bool_contents_size() > 0) + (c.int_contents_size() > 0) +
      (c.int64_contents_size() > 0) + (c.uint_contents_size() > 0) +
      (c.uint64_contents_size() > 0) + (c.fp32_contents_size() > 0) +
      (c.fp64_contents_size() > 0) + (c.bytes_contents_size() > 0);
  absl::string_view field;
  switch (t.dtype()) {
    case DataType::kFloat32:
      field = "fp32_contents";
      if (c.fp32_contents_size() != n) {
        return count_error(field, c.fp32_contents_size());
      }
      std::memcpy(t.bytes(), c.fp32_contents().data(), n * sizeof(float));
      break;
    case DataType::kInt32:
      field = "int_contents";
      if (c.int_contents_size() != n) {
        return count_error(field, c.int_contents_size());
      }
      std::memcpy(t.bytes(), c.int_contents().data(), n * sizeof(int32_t));
      break;
    case DataType::kInt8:
      field = "int_contents";
      if (c.int_contents_size() != n) {
        return count_error(field, c.int_contents_size());
      }
      for (int64_t i = 0; i < n; ++i) {
        const int32_t v = c.int_contents(static_cast<int>(i));
        if (v < -128 || v > 127) {
          return absl::InvalidArgumentError(
              absl::StrCat("input '", in.name(), "': INT8 value ", v,
                           " at index ", i, " is out of range [-128, 127]"));
        }
        t.data<int8_t>()[i] = static_cast<int8_t>(v);
      }
      break;
    case DataType::kUInt8:
      field = "uint_contents";
      if (c.uint_contents_size() != n) {
        return count_error(field, c.uint_contents_size());
      }
      for (int64_t i = 0; i < n; ++i) {
        const uint32_t v = c.uint_contents(static_cast<int>(i));
        if (v > 255) {
          return absl::InvalidArgumentError(
              absl::StrCat("input '", in.name(), "': UINT8 value ", v,
                           " at index ", i, " is out of range [0, 255]"));
        }
        t.data<uint8_t>()[i] = static_cast<uint8_t>(v);
      }
      break;
  }
  if (fields_set > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "input '", in.name(), "': expected only contents.", field, " for ",
        DataTypeName(t.dtype()), ", but other contents fields are set too"));
  }
  return absl::OkStatus();
}

}  // namespace

std::vector<int64_t> RequestShape(const engine::ModelInfo& info,
                                  const engine::Value& value) {
  std::vector<int64_t> shape = value.shape;
  if (info.config.max_batch_size > 0 && !shape.empty()) shape[0] = -1;
  return shape;
}

absl::StatusOr<std::vector<Tensor>> BuildInputs(
    const engine::ModelInfo& info,
    const inference::ModelInferRequest& request) {
  const int num_inputs = request.inputs_size();
  if (num_inputs != static_cast<int>(info.inputs.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("model '", info.name, "' expects ", info.inputs.size(),
                     " input(s) ", ExpectedInputs(info), ", got ", num_inputs));
  }
  const bool raw = request.raw_input_contents_size() > 0;
  if (raw && request.raw_input_contents_size() != num_inputs) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected one raw_input_contents entry per input (",
                     num_inputs, "), got ", request.raw_input_contents_size()));
  }
  std::vector<Tensor> tensors(info.inputs.size());
  std::vector<bool> seen(info.inputs.size(), false);
  int64_t batch = -1;
  for (int r = 0; r < num_inputs; ++r) {
    const auto& in = request.inputs(r);
    int index = -1;
    for (size_t i = 0; i < info.inputs.size(); ++i) {
      if (info.inputs[i].name == in.name()) index = static_cast<int>(i);
    }
    if (index < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("unexpected input '", in.name(), "' (model '", info.name,
                       "' expects ", ExpectedInputs(info), ")"));
    }
    if (seen[index]) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", in.name(), "' is given twice"));
    }
    seen[index] = true;
    const engine::Value& v = info.inputs[index];
    if (in.datatype() != DataTypeName(v.dtype)) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", in.name(), "': expected datatype ",
                       DataTypeName(v.dtype), ", got '", in.datatype(), "'"));
    }
    const std::vector<int64_t> want = RequestShape(info, v);
    const std::vector<int64_t> got(in.shape().begin(), in.shape().end());
    bool shape_ok = got.size() == want.size();
    for (size_t d = 0; shape_ok && d < want.size(); ++d) {
      if (want[d] == -1) {
        shape_ok = got[d] >= 1 && got[d] <= info.config.max_batch_size;
      } else {
        shape_ok = got[d] == want[d];
      }
    }
    if (!shape_ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", in.name(), "': expected shape ", ShapeString(want),
          info.config.max_batch_size > 0
              ? absl::StrCat(" with -1 in 1..", info.config.max_batch_size)
              : std::string(),
          ", got ", ShapeString(got)));
    }
    if (!got.empty() && info.config.max_batch_size > 0) {
      if (batch >= 0 && got[0] != batch) {
        return absl::InvalidArgumentError(
            absl::StrCat("input '", in.name(), "': batch size ", got[0],
                         " differs from the other inputs' ", batch));
      }
      batch = got[0];
    }
    const bool typed = in.has_contents() && HasTypedContents(in.contents());
    if (raw && typed) {
      return absl::InvalidArgumentError(absl::StrCat(
          "input '", in.name(),
          "': expected either raw_input_contents or contents, got both"));
    }
    if (!raw && !typed) {
      return absl::InvalidArgumentError(
          absl::StrCat("input '", in.name(),
                       "': no data (expected raw_input_contents or contents)"));
    }
    absl::StatusOr<Tensor> t = Tensor::Create(v.dtype, got);
    if (!t.ok()) return t.status();
    if (raw) {
      const std::string& bytes = request.raw_input_contents(r);
      if (bytes.size() != t->byte_size()) {
        return absl::InvalidArgumentError(absl::StrCat(
            "input '", in.name(), "': expected ", t->byte_size(),
            " bytes of raw_input_contents for ", DataTypeName(v.dtype), " ",
            ShapeString(got), ", got ", bytes.size()));
      }
      std::memcpy(t->bytes(), bytes.data(), bytes.size());
    } else {
      absl::Status s = CopyTyped(in, *t);
      if (!s.ok()) return s;
    }
    tensors[index] = *std::move(t);
  }
  return tensors;
}

absl::StatusOr<std::vector<int>> SelectOutputs(
    const engine::ModelInfo& info,
    const inference::ModelInferRequest& request) {
  if (request.outputs_size() == 0) return info.default_outputs;
  std::vector<int> selected;
  std::set<int> seen;
  for (const auto& out : request.outputs()) {
    int index = -1;
    for (size_t i = 0; i < info.outputs.size(); ++i) {
      if (info.outputs[i].name == out.name()) index = static_cast<int>(i);
    }
    if (index < 0) {
      std::vector<std::string> names;
      for (const engine::Value& v : info.outputs) names.push_back(v.name);
      return absl::InvalidArgumentError(
          absl::StrCat("unknown output '", out.name(), "' (model '", info.name,
                       "' has [", absl::StrJoin(names, ", "), "])"));
    }
    if (!seen.insert(index).second) {
      return absl::InvalidArgumentError(
          absl::StrCat("output '", out.name(), "' is requested twice"));
    }
    selected.push_back(index);
  }
  return selected;
}

void FillOutputs(const engine::ModelInfo& info,
                 const std::vector<int>& selected,
                 const std::vector<Tensor>& outputs,
                 inference::ModelInferResponse* response) {
  for (int index : selected) {
    const Tensor& t = outputs[index];
    auto* out = response->add_outputs();
    out->set_name(info.outputs[index].name);
    out->set_datatype(std::string(DataTypeName(t.dtype())));
    for (int64_t d : t.shape()) out->add_shape(d);
    response->add_raw_output_contents(
        std::string(reinterpret_cast<const char*>(t.bytes()), t.byte_size()));
  }
}

}  // namespace vtaserve::server
