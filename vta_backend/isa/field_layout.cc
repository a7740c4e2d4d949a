#include "vta_backend/isa/field_layout.h"

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace vtaserve::vta::isa {

absl::StatusOr<std::vector<FieldPos>> PackBitfields(
    absl::Span<const int> widths, int max_words) {
  std::vector<FieldPos> out;
  out.reserve(widths.size());
  int word = 0;
  int used = 0;
  for (size_t i = 0; i < widths.size(); ++i) {
    const int w = widths[i];
    if (w < 1 || w > 64) {
      return absl::InvalidArgumentError(
          absl::StrCat("bitfield ", i, " has invalid width ", w));
    }
    if (used + w > 64) {  // never straddle a 64-bit word
      ++word;
      used = 0;
    }
    if (word >= max_words) {
      return absl::InvalidArgumentError(
          absl::StrCat("bitfields do not fit in ", max_words * 64,
                       " bits (field ", i, " of width ", w, " overflows)"));
    }
    out.push_back(FieldPos{word, used, w});
    used += w;
  }
  return out;
}

}  // namespace vtaserve::vta::isa
