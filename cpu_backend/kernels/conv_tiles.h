// The conv kernels' shared walk over a unit's output pixels (every ISA
// path): tiles of MR pixels in order, flattened over rows (a tile may span
// a row end), then one tail tile of the rest, each tile size a compile-time
// constant so the kernels keep their accumulators in registers.
// Include only after the including file's `#pragma GCC target`, so the walk
// is compiled (and inlined) for it; everything here is in an unnamed
// namespace, so each kernel file gets its own copy for its own target.
#ifndef VTASERVE_CPU_BACKEND_KERNELS_CONV_TILES_H_
#define VTASERVE_CPU_BACKEND_KERNELS_CONV_TILES_H_

#include <cstdint>
#include <type_traits>
#include <utility>

#include "cpu_backend/kernels/conv.h"

namespace vtaserve::cpu {
namespace {  // NOLINT(build/namespaces): per-target copies, see above

// Calls tile(std::integral_constant<int, N>{}, first) for the tail of
// n (< MR) items starting at `first`; nothing for n == 0.
template <int MR, typename F, int... N>
inline __attribute__((always_inline)) void DispatchTail(
    int n, int64_t first, F& tile, std::integer_sequence<int, N...>) {
  ((n == N + 1 ? (tile(std::integral_constant<int, N + 1>{}, first), 0) : 0),
   ...);
}

// Calls tile(std::integral_constant<int, N>{}, first) for consecutive
// groups of items covering [begin, end): N = MR for every full group, then
// one group of the remaining items.
template <int MR, typename F>
inline __attribute__((always_inline)) void ForEachTile(int64_t begin,
                                                       int64_t end, F&& tile) {
  int64_t first = begin;
  for (; first + MR <= end; first += MR)
    tile(std::integral_constant<int, MR>{}, first);
  DispatchTail<MR>(static_cast<int>(end - first), first, tile,
                   std::make_integer_sequence<int, MR - 1>{});
}

// Window starts (in the packed buffer) of consecutive output pixels of the
// direct and window schemes, from pixel `pix` on, wrapping at row ends:
// Next<N>(ptr) fills ptr[0, N) and moves on N pixels. A plain value: keep
// it a local of the kernel so the compiler holds it in registers.
template <typename T, int MR>
struct PixelWindows {
  PixelWindows(const PackedConv& pc, const T* buf, int64_t pix)
      : out_w(pc.out_w),
        pix_stride(int64_t{pc.sw} * pc.cbuf),
        row_stride(int64_t{pc.sh} * pc.wp * pc.cbuf),
        ow(pix % pc.out_w),
        row(buf + pix / pc.out_w * row_stride) {}
  template <int N>
  inline __attribute__((always_inline)) void Next(const T** ptr) {
#pragma GCC unroll 16
    for (int p = 0; p < N; ++p) {
      ptr[p] = row + ow * pix_stride;
      if (++ow == out_w) {
        ow = 0;
        row += row_stride;
      }
    }
  }
  int64_t out_w, pix_stride, row_stride;
  int64_t ow;
  const T* row;
};

}  // namespace
}  // namespace vtaserve::cpu

#endif  // VTASERVE_CPU_BACKEND_KERNELS_CONV_TILES_H_
