// ConvS8AvxVnni_6x16: 6 output pixels x 16 output channels per tile with
// AVX-VNNI vpdpbusd (u8 activations x s8 weights, 4-deep dot products into
// int32 without saturation). Compiled for AVX-VNNI by target pragma only and
// called only after CPUID agrees.
#include <immintrin.h>

#include <algorithm>
#include <cstring>

#include "cpu_backend/kernels/conv.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2,avxvnni")

namespace vtaserve::cpu {
namespace {

constexpr int kMr = 6;

inline __m256i RequantAvxVnni(__m256i acc, __m256i rs, __m256i ls, __m256i lo,
                           __m256i hi, __m256i zp) {
  __m256i v = _mm256_sllv_epi32(_mm256_srav_epi32(acc, rs), ls);
  v = _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
  return _mm256_add_epi32(v, zp);
}

struct BlockArgs {
  const int64_t* tap_off;
  int taps;
  int kred;
  int64_t pix_stride;   // bytes between neighbouring pixels
  const int8_t* w;      // this block's weights
  __m256i bias0, bias1, rs0, rs1, ls0, ls1, lo, hi, zp;
  int64_t out_stride;   // bytes between neighbouring output pixels
  int nc;               // valid channels of the block
};

template <int NW>
inline __attribute__((always_inline)) void TileAvxVnni(const BlockArgs& a,
                                                     const uint8_t* in,
                                                     int8_t* out) {
  __m256i acc0[NW], acc1[NW];
#pragma GCC unroll 16
  for (int p = 0; p < NW; ++p) {
    acc0[p] = a.bias0;
    acc1[p] = a.bias1;
  }
  const int8_t* w = a.w;
  for (int t = 0; t < a.taps; ++t) {
    const uint8_t* ip = in + a.tap_off[t];
    for (int k = 0; k < a.kred; k += 4, w += 64) {
      const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
      const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 32));
#pragma GCC unroll 16
      for (int p = 0; p < NW; ++p) {
        int32_t quad;
        std::memcpy(&quad, ip + p * a.pix_stride + k, sizeof(quad));
        const __m256i x = _mm256_set1_epi32(quad);
        acc0[p] = _mm256_dpbusd_avx_epi32(acc0[p], x, w0);
        acc1[p] = _mm256_dpbusd_avx_epi32(acc1[p], x, w1);
      }
    }
  }
#pragma GCC unroll 16
  for (int p = 0; p < NW; ++p) {
    const __m256i r0 = RequantAvxVnni(acc0[p], a.rs0, a.ls0, a.lo, a.hi, a.zp);
    const __m256i r1 = RequantAvxVnni(acc1[p], a.rs1, a.ls1, a.lo, a.hi, a.zp);
    // Values are already in [-128, 127]: the saturating packs are exact.
    const __m256i p16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(r0, r1), 0xD8);
    const __m128i p8 = _mm_packs_epi16(_mm256_castsi256_si128(p16),
                                       _mm256_extracti128_si256(p16, 1));
    int8_t* o = out + p * a.out_stride;
    if (a.nc == kConvOcBlock) {
      _mm_storeu_si128(reinterpret_cast<__m128i*>(o), p8);
    } else {
      alignas(16) int8_t tmp[16];
      _mm_store_si128(reinterpret_cast<__m128i*>(tmp), p8);
      std::memcpy(o, tmp, a.nc);
    }
  }
}

}  // namespace

void ConvS8AvxVnni_6x16(const PackedConv& pc, const uint8_t* buf, int8_t* y,
                     int64_t unit_begin, int64_t unit_end) {
  const uint8_t* in = buf;
  BlockArgs a;
  a.tap_off = pc.tap_off.data();
  a.taps = pc.taps;
  a.kred = pc.kred;
  a.pix_stride = int64_t{pc.sw} * pc.cbuf;
  a.lo = _mm256_set1_epi32(pc.lo);
  a.hi = _mm256_set1_epi32(pc.hi);
  a.zp = _mm256_set1_epi32(pc.out_zp);
  a.out_stride = pc.cout;
  const int64_t wblock = int64_t{pc.taps} * pc.kred * kConvOcBlock;
  for (int64_t u = unit_begin; u < unit_end; ++u) {
    const int64_t oh = u % pc.out_h;
    const int b = static_cast<int>(u / pc.out_h);
    const int c0 = b * kConvOcBlock;
    auto ld = [&](const std::vector<int32_t>& v, int off) {
      return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(v.data() + c0 + off));
    };
    a.bias0 = ld(pc.bias, 0);
    a.bias1 = ld(pc.bias, 8);
    a.rs0 = ld(pc.rshift, 0);
    a.rs1 = ld(pc.rshift, 8);
    a.ls0 = ld(pc.lshift, 0);
    a.ls1 = ld(pc.lshift, 8);
    a.w = pc.w8.data() + b * wblock;
    a.nc = std::min(kConvOcBlock, pc.cout - c0);
    const uint8_t* row = in + oh * pc.sh * pc.wp * pc.cbuf;
    int8_t* orow = y + oh * pc.out_w * pc.cout + c0;
    int64_t ow = 0;
    for (; ow + kMr <= pc.out_w; ow += kMr) {
      TileAvxVnni<kMr>(a, row + ow * a.pix_stride, orow + ow * pc.cout);
    }
    const int64_t rest = pc.out_w - ow;
    const uint8_t* rin = row + ow * a.pix_stride;
    int8_t* rout = orow + ow * pc.cout;
    switch (rest) {
      case 1: TileAvxVnni<1>(a, rin, rout); break;
      case 2: TileAvxVnni<2>(a, rin, rout); break;
      case 3: TileAvxVnni<3>(a, rin, rout); break;
      case 4: TileAvxVnni<4>(a, rin, rout); break;
      case 5: TileAvxVnni<5>(a, rin, rout); break;
      default: break;
    }
  }
}

}  // namespace vtaserve::cpu

#pragma GCC pop_options
