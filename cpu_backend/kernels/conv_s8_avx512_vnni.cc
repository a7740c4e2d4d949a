// ConvS8Avx512Vnni_12x16: 12 output pixels x 16 output channels per tile
// with AVX-512 VNNI vpdpbusd on zmm registers (u8 activations x s8 weights,
// 4-deep dot products into int32 without saturation): one zmm holds the 16
// channels of one pixel. Compiled for AVX-512 by target pragma only and
// called only after CPUID agrees.
// GCC 12 flags its own AVX-512 intrinsics (`__Y = __Y` placeholders).
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "cpu_backend/kernels/conv.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2,avx512f,avx512bw,avx512vl,avx512vnni")
// Compiled for the target above (see the header).
#include "cpu_backend/kernels/conv_tiles.h"

namespace vtaserve::cpu {
namespace {

constexpr int kMr = 12;

struct BlockArgs {
  const int64_t* tap_off;
  int taps;
  int kred;
  const int8_t* w;  // this block's weights
  __m512i bias, rs, ls, lo, hi, zp;
  int64_t out_stride;  // bytes between neighbouring output pixels
  __mmask16 store_mask;
};

// NW pixels (each with its own window start in `in`, so a tile may span
// output rows) x 16 channels.
template <int NW>
inline __attribute__((always_inline)) void TileAvx512Vnni(
    const BlockArgs& a, const uint8_t* const* in, int8_t* out) {
  __m512i acc[NW];
#pragma GCC unroll 16
  for (int p = 0; p < NW; ++p) acc[p] = a.bias;
  const int8_t* w = a.w;
  for (int t = 0; t < a.taps; ++t) {
    const int64_t off = a.tap_off[t];
    const uint8_t* ip[NW];
#pragma GCC unroll 16
    for (int p = 0; p < NW; ++p) ip[p] = in[p] + off;
    for (int k = 0; k < a.kred; k += 4, w += 64) {
      const __m512i w0 = _mm512_loadu_si512(w);
#pragma GCC unroll 16
      for (int p = 0; p < NW; ++p) {
        int32_t quad;
        std::memcpy(&quad, ip[p] + k, sizeof(quad));
        acc[p] = _mm512_dpbusd_epi32(acc[p], _mm512_set1_epi32(quad), w0);
      }
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < NW; ++p) {
    __m512i v = _mm512_sllv_epi32(_mm512_srav_epi32(acc[p], a.rs), a.ls);
    v = _mm512_min_epi32(_mm512_max_epi32(v, a.lo), a.hi);
    v = _mm512_add_epi32(v, a.zp);
    // In [-128, 127] already: the saturating narrow is exact.
    _mm_mask_storeu_epi8(out + p * a.out_stride, a.store_mask,
                         _mm512_cvtsepi32_epi8(v));
  }
}

}  // namespace

void ConvS8Avx512Vnni_12x16(const PackedConv& pc, const uint8_t* buf, int8_t* y,
                            int64_t unit_begin, int64_t unit_end) {
  BlockArgs a;
  a.tap_off = pc.tap_off.data();
  a.taps = pc.taps;
  a.kred = pc.kred;
  a.lo = _mm512_set1_epi32(pc.lo);
  a.hi = _mm512_set1_epi32(pc.hi);
  a.zp = _mm512_set1_epi32(pc.out_zp);
  a.out_stride = pc.cout;
  const int64_t wblock = int64_t{pc.taps} * pc.kred * kConvOcBlock;
  for (int64_t u = unit_begin; u < unit_end; ++u) {
    const ConvUnit cu = DecodeConvUnit(pc, u);
    const int c0 = cu.block * kConvOcBlock;
    a.bias = _mm512_loadu_si512(pc.bias.data() + c0);
    a.rs = _mm512_loadu_si512(pc.rshift.data() + c0);
    a.ls = _mm512_loadu_si512(pc.lshift.data() + c0);
    a.w = pc.w8.data() + cu.block * wblock;
    const int nc = std::min(kConvOcBlock, pc.cout - c0);
    a.store_mask = static_cast<__mmask16>((1u << nc) - 1u);
    int8_t* ob = y + c0;
    PixelWindows<uint8_t, kMr> win(pc, buf, cu.pix_begin);
    ForEachTile<kMr>(
        cu.pix_begin,
        cu.pix_end, [&](auto n, int64_t pix) __attribute__((always_inline)) {
          const uint8_t* ptr[kMr];
          win.Next<decltype(n)::value>(ptr);
          TileAvx512Vnni<decltype(n)::value>(a, ptr, ob + pix * pc.cout);
        });
  }
}

}  // namespace vtaserve::cpu

#pragma GCC pop_options
