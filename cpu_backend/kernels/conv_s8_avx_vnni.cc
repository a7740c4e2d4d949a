// ConvS8AvxVnni_6x16: 6 output pixels x 16 output channels per tile with
// AVX-VNNI vpdpbusd (u8 activations x s8 weights, 4-deep dot products into
// int32 without saturation). Compiled for AVX-VNNI by target pragma only and
// called only after CPUID agrees.
// tests/cpu_backend/avx_vnni_emulated_test.cc compiles this file a second
// time with VTASERVE_AVX_VNNI_EMULATED defined: the kernel is then named
// ConvS8AvxVnniEmulated_6x16, built for AVX2 alone, and vpdpbusd is the
// test's exact AVX2 emulation (VTASERVE_AVX_VNNI_DPBUSD), so the tile driver
// is run on CPUs without AVX-VNNI.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "cpu_backend/kernels/conv.h"

#pragma GCC push_options
#ifdef VTASERVE_AVX_VNNI_EMULATED
#pragma GCC target("avx2,fma,bmi,bmi2")
#define VTASERVE_AVX_VNNI_KERNEL ConvS8AvxVnniEmulated_6x16
#else
#pragma GCC target("avx2,fma,bmi,bmi2,avxvnni")
#define VTASERVE_AVX_VNNI_KERNEL ConvS8AvxVnni_6x16
#define VTASERVE_AVX_VNNI_DPBUSD _mm256_dpbusd_avx_epi32
#endif
// Compiled for the target above (see the headers).
#include "cpu_backend/kernels/conv_block_avx.h"
#include "cpu_backend/kernels/conv_tiles.h"

namespace vtaserve::cpu {
namespace {

constexpr int kMr = 6;

using BlockArgs = conv_avx::BlockArgs<int8_t>;

// NW pixels (each with its own window start in `in`, so a tile may span
// output rows) x 16 channels.
template <int NW>
inline __attribute__((always_inline)) void TileAvxVnni(const BlockArgs& a,
                                                       const uint8_t* const* in,
                                                       int8_t* out) {
  __m256i acc0[NW], acc1[NW];
#pragma GCC unroll 16
  for (int p = 0; p < NW; ++p) {
    acc0[p] = a.bias0;
    acc1[p] = a.bias1;
  }
  const int8_t* w = a.w;
  for (int t = 0; t < a.taps; ++t) {
    const int64_t off = a.tap_off[t];
    const uint8_t* ip[NW];
#pragma GCC unroll 16
    for (int p = 0; p < NW; ++p) ip[p] = in[p] + off;
    for (int k = 0; k < a.kred; k += 4, w += 64) {
      const __m256i w0 =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
      const __m256i w1 =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32));
#pragma GCC unroll 16
      for (int p = 0; p < NW; ++p) {
        int32_t quad;
        std::memcpy(&quad, ip[p] + k, sizeof(quad));
        const __m256i x = _mm256_set1_epi32(quad);
        acc0[p] = VTASERVE_AVX_VNNI_DPBUSD(acc0[p], x, w0);
        acc1[p] = VTASERVE_AVX_VNNI_DPBUSD(acc1[p], x, w1);
      }
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < NW; ++p)
    conv_avx::Store16(a, acc0[p], acc1[p], out + p * a.out_stride);
}

}  // namespace

void VTASERVE_AVX_VNNI_KERNEL(const PackedConv& pc, const uint8_t* buf,
                              int8_t* y, int64_t unit_begin, int64_t unit_end) {
  BlockArgs a = conv_avx::LayerArgs<int8_t>(pc);
  for (int64_t u = unit_begin; u < unit_end; ++u) {
    const ConvUnit cu = DecodeConvUnit(pc, u);
    conv_avx::SetBlock(pc, cu.block, pc.w8.data(), a);
    int8_t* ob = y + cu.block * kConvOcBlock;
    PixelWindows<uint8_t, kMr> win(pc, buf, cu.pix_begin);
    ForEachTile<kMr>(
        cu.pix_begin,
        cu.pix_end, [&](auto n, int64_t pix) __attribute__((always_inline)) {
          const uint8_t* ptr[kMr];
          win.Next<decltype(n)::value>(ptr);
          TileAvxVnni<decltype(n)::value>(a, ptr, ob + pix * pc.cout);
        });
  }
}

}  // namespace vtaserve::cpu

#undef VTASERVE_AVX_VNNI_KERNEL
#pragma GCC pop_options
