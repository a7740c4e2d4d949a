#include "engine/npy.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/common/status_macros.h"

namespace vtaserve {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr size_t kMagicLen = 6;

absl::Status Malformed(absl::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("malformed .npy: ", what));
}

// Returns the text following `'key':` in the header dict, up to the end of
// the dict, with leading spaces removed.
absl::StatusOr<absl::string_view> FindKey(absl::string_view header,
                                          absl::string_view key) {
  for (const char quote : {'\'', '"'}) {
    const std::string needle =
        absl::StrCat(std::string(1, quote), key, std::string(1, quote));
    const size_t pos = header.find(needle);
    if (pos == absl::string_view::npos) continue;
    absl::string_view rest = header.substr(pos + needle.size());
    rest = absl::StripLeadingAsciiWhitespace(rest);
    if (rest.empty() || rest[0] != ':') return Malformed("missing ':'");
    return absl::StripLeadingAsciiWhitespace(rest.substr(1));
  }
  return Malformed(absl::StrCat("header has no '", key, "'"));
}

absl::StatusOr<DataType> ParseDescr(absl::string_view rest) {
  if (rest.empty() || (rest[0] != '\'' && rest[0] != '"')) {
    return Malformed("descr is not a string");
  }
  const size_t end = rest.find(rest[0], 1);
  if (end == absl::string_view::npos) return Malformed("unterminated descr");
  const absl::string_view d = rest.substr(1, end - 1);
  if (d == "<f4") return DataType::kFloat32;
  if (d == "|u1" || d == "<u1" || d == "u1" || d == "=u1")
    return DataType::kUInt8;
  if (d == "|i1" || d == "<i1" || d == "i1" || d == "=i1")
    return DataType::kInt8;
  if (d == "<i4") return DataType::kInt32;
  return absl::InvalidArgumentError(absl::StrCat(
      "unsupported .npy dtype '", d, "' (supported: <f4, |u1, |i1, <i4)"));
}

absl::StatusOr<std::vector<int64_t>> ParseShape(absl::string_view rest) {
  if (rest.empty() || rest[0] != '(') return Malformed("shape is not a tuple");
  const size_t end = rest.find(')');
  if (end == absl::string_view::npos) return Malformed("unterminated shape");
  std::vector<int64_t> shape;
  for (absl::string_view part :
       absl::StrSplit(rest.substr(1, end - 1), ',', absl::SkipWhitespace())) {
    int64_t d = 0;
    absl::string_view t = absl::StripAsciiWhitespace(part);
    if (!t.empty() && (t.back() == 'L' || t.back() == 'l')) t.remove_suffix(1);
    if (!absl::SimpleAtoi(t, &d) || d < 0) {
      return Malformed(absl::StrCat("bad dimension '", part, "'"));
    }
    shape.push_back(d);
  }
  if (shape.size() > 32) return Malformed("too many dimensions");
  return shape;
}

}  // namespace

absl::StatusOr<Tensor> ParseNpy(absl::string_view bytes) {
  if (bytes.size() < kMagicLen + 2 ||
      bytes.substr(0, kMagicLen) != absl::string_view(kMagic, kMagicLen)) {
    return Malformed("bad magic (not a .npy file)");
  }
  const uint8_t major = static_cast<uint8_t>(bytes[6]);
  size_t header_len = 0;
  size_t offset = 0;
  if (major == 1) {
    if (bytes.size() < 10) return Malformed("truncated header length");
    header_len = static_cast<uint8_t>(bytes[8]) |
                 (size_t{static_cast<uint8_t>(bytes[9])} << 8);
    offset = 10;
  } else if (major == 2 || major == 3) {
    if (bytes.size() < 12) return Malformed("truncated header length");
    for (int i = 3; i >= 0; --i) {
      header_len = (header_len << 8) | static_cast<uint8_t>(bytes[8 + i]);
    }
    offset = 12;
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unsupported .npy format version ", int{major}));
  }
  if (header_len > bytes.size() - offset) return Malformed("truncated header");
  const absl::string_view header = bytes.substr(offset, header_len);
  offset += header_len;

  VTASERVE_ASSIGN_OR_RETURN(absl::string_view descr, FindKey(header, "descr"));
  VTASERVE_ASSIGN_OR_RETURN(DataType dtype, ParseDescr(descr));
  VTASERVE_ASSIGN_OR_RETURN(absl::string_view fortran,
                            FindKey(header, "fortran_order"));
  if (absl::StartsWith(fortran, "True")) {
    return absl::InvalidArgumentError(".npy in Fortran order is unsupported");
  }
  if (!absl::StartsWith(fortran, "False"))
    return Malformed("bad fortran_order");
  VTASERVE_ASSIGN_OR_RETURN(absl::string_view shape_text,
                            FindKey(header, "shape"));
  VTASERVE_ASSIGN_OR_RETURN(std::vector<int64_t> shape, ParseShape(shape_text));

  const int64_t n = NumElements(shape);
  if (n < 0) return Malformed("shape overflows");
  const uint64_t elem = DataTypeSize(dtype);
  if (static_cast<uint64_t>(n) >
      static_cast<uint64_t>(Tensor::kMaxBytes) / elem) {
    return absl::ResourceExhaustedError(
        absl::StrCat(".npy tensor of shape ", ShapeToString(shape), " exceeds ",
                     Tensor::kMaxBytes, " bytes"));
  }
  const size_t payload = static_cast<size_t>(n) * elem;
  if (bytes.size() - offset != payload) {
    return Malformed(absl::StrCat("payload is ", bytes.size() - offset,
                                  " bytes, shape ", ShapeToString(shape),
                                  " needs ", payload));
  }
  VTASERVE_ASSIGN_OR_RETURN(Tensor t, Tensor::Create(dtype, shape));
  if (payload > 0) std::memcpy(t.bytes(), bytes.data() + offset, payload);
  return t;
}

std::string SerializeNpy(const Tensor& tensor) {
  absl::string_view descr = "<f4";
  switch (tensor.dtype()) {
    case DataType::kFloat32:
      descr = "<f4";
      break;
    case DataType::kUInt8:
      descr = "|u1";
      break;
    case DataType::kInt8:
      descr = "|i1";
      break;
    case DataType::kInt32:
      descr = "<i4";
      break;
  }
  std::string shape = absl::StrJoin(tensor.shape(), ", ");
  if (tensor.shape().size() == 1) shape += ",";
  std::string dict =
      absl::StrCat("{'descr': '", descr,
                   "', 'fortran_order': False, 'shape': (", shape, "), }");
  // Pad with spaces so that magic + lengths + header is a multiple of 64,
  // ending in '\n' (what numpy writes).
  size_t prefix = kMagicLen + 2 + 2;
  int major = 1;
  if (dict.size() + 1 + prefix + 64 > 65535) {
    major = 2;
    prefix = kMagicLen + 2 + 4;
  }
  const size_t unpadded = prefix + dict.size() + 1;
  dict.append((64 - unpadded % 64) % 64, ' ');
  dict.push_back('\n');
  std::string out(kMagic, kMagicLen);
  out.push_back(static_cast<char>(major));
  out.push_back(0);
  const size_t len = dict.size();
  out.push_back(static_cast<char>(len & 0xff));
  out.push_back(static_cast<char>((len >> 8) & 0xff));
  if (major == 2) {
    out.push_back(static_cast<char>((len >> 16) & 0xff));
    out.push_back(static_cast<char>((len >> 24) & 0xff));
  }
  out += dict;
  if (tensor.byte_size() > 0 && !tensor.empty()) {
    out.append(reinterpret_cast<const char*>(tensor.bytes()),
               tensor.byte_size());
  }
  return out;
}

absl::StatusOr<Tensor> ReadNpy(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    const std::string msg =
        absl::StrCat("cannot open '", path, "': ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(msg);
    if (err == EACCES) return absl::PermissionDeniedError(msg);
    return absl::InvalidArgumentError(msg);
  }
  std::string bytes;
  char buf[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof(buf), f)) > 0) {
    bytes.append(buf, got);
    if (bytes.size() > static_cast<size_t>(Tensor::kMaxBytes) + (1 << 20)) {
      std::fclose(f);
      return absl::ResourceExhaustedError(absl::StrCat(
          "'", path, "' is larger than any tensor the engine accepts"));
    }
  }
  const bool failed = std::ferror(f) != 0;
  std::fclose(f);
  if (failed)
    return absl::InvalidArgumentError(
        absl::StrCat("error reading '", path, "'"));
  absl::StatusOr<Tensor> t = ParseNpy(bytes);
  if (!t.ok()) return AnnotateStatus(t.status(), path);
  return t;
}

absl::Status WriteNpy(const std::string& path, const Tensor& tensor) {
  const std::string bytes = SerializeNpy(tensor);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    const int err = errno;
    const std::string msg =
        absl::StrCat("cannot create '", path, "': ", std::strerror(err));
    if (err == ENOENT) return absl::NotFoundError(msg);
    if (err == EACCES) return absl::PermissionDeniedError(msg);
    return absl::InternalError(msg);
  }
  const size_t wrote = std::fwrite(bytes.data(), 1, bytes.size(), f);
  const int closed = std::fclose(f);
  if (wrote != bytes.size() || closed != 0) {
    return absl::InternalError(absl::StrCat("failed writing '", path, "'"));
  }
  return absl::OkStatus();
}

}  // namespace vtaserve
