// Bit positions of C-bitfield-style instruction fields: fields are packed in
// declaration order into consecutive 64-bit words, and a field that does not
// fit in the rest of the current word starts at the next word (the GCC/SysV
// rule of vta-isa.md 2.1). Pure functions; thread-safe.
#ifndef VTASERVE_VTA_BACKEND_ISA_FIELD_LAYOUT_H_
#define VTASERVE_VTA_BACKEND_ISA_FIELD_LAYOUT_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace vtaserve::vta::isa {

// Where one field lives: bits [shift, shift + width) of word `word`.
struct FieldPos {
  int word = 0;
  int shift = 0;
  int width = 0;

  // Absolute position of the lowest bit (word * 64 + shift).
  int Bit() const { return word * 64 + shift; }
  uint64_t Mask() const {
    return width >= 64 ? ~uint64_t{0} : ((uint64_t{1} << width) - 1);
  }
};

// Packs `widths` (each 1..64, in declaration order) into at most `max_words`
// 64-bit words. InvalidArgument if a width is out of range or the fields do
// not fit.
absl::StatusOr<std::vector<FieldPos>> PackBitfields(
    absl::Span<const int> widths, int max_words);

}  // namespace vtaserve::vta::isa

#endif  // VTASERVE_VTA_BACKEND_ISA_FIELD_LAYOUT_H_
