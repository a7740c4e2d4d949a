// The 256-bit conv kernels' shared parts (AVX2 and AVX-VNNI): a block's
// arguments, their setup, and the requantize-and-store of 16 channels.
// Include only after the including file's `#pragma GCC target` (AVX2 or
// wider), so these are compiled for it; everything here has internal
// linkage, so each kernel file gets its own copy for its own target.
#ifndef VTASERVE_CPU_BACKEND_KERNELS_CONV_BLOCK_AVX_H_
#define VTASERVE_CPU_BACKEND_KERNELS_CONV_BLOCK_AVX_H_

#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <vector>

#include "cpu_backend/kernels/conv.h"

namespace vtaserve::cpu {
namespace conv_avx {  // NOLINT(build/namespaces): internal linkage below

// One output-channel block of a layer; W is the packed weight type (int16
// for AVX2's vpmaddwd, int8 for vpdpbusd).
template <typename W>
struct BlockArgs {
  const int64_t* tap_off;
  int taps;
  int kred;
  const W* w;  // this block's weights
  __m256i bias0, bias1, rs0, rs1, ls0, ls1, lo, hi, zp;
  int64_t out_stride;  // bytes between neighbouring output pixels
  int nc;              // valid channels of the block
};

// The parts every block of pc shares (taps as packed: Winograd kernels set
// their own).
template <typename W>
static inline BlockArgs<W> LayerArgs(const PackedConv& pc) {
  BlockArgs<W> a;
  a.tap_off = pc.tap_off.data();
  a.taps = pc.taps;
  a.kred = pc.kred;
  a.lo = _mm256_set1_epi32(pc.lo);
  a.hi = _mm256_set1_epi32(pc.hi);
  a.zp = _mm256_set1_epi32(pc.out_zp);
  a.out_stride = pc.cout;
  return a;
}

// Points `a` at output-channel block `block`, whose weights start at
// `weights` + block * taps * kred * 16.
template <typename W>
static inline void SetBlock(const PackedConv& pc, int block, const W* weights,
                            BlockArgs<W>& a) {
  const int c0 = block * kConvOcBlock;
  auto ld = [&](const std::vector<int32_t>& v, int off) {
    return _mm256_loadu_si256(
        reinterpret_cast<const __m256i*>(v.data() + c0 + off));
  };
  a.bias0 = ld(pc.bias, 0);
  a.bias1 = ld(pc.bias, 8);
  a.rs0 = ld(pc.rshift, 0);
  a.rs1 = ld(pc.rshift, 8);
  a.ls0 = ld(pc.lshift, 0);
  a.ls1 = ld(pc.lshift, 8);
  a.w = weights + int64_t{block} * pc.taps * pc.kred * kConvOcBlock;
  a.nc = std::min(kConvOcBlock, pc.cout - c0);
}

static inline __attribute__((always_inline)) __m256i Requant(
    __m256i acc, __m256i rs, __m256i ls, __m256i lo, __m256i hi, __m256i zp) {
  __m256i v = _mm256_sllv_epi32(_mm256_srav_epi32(acc, rs), ls);
  v = _mm256_min_epi32(_mm256_max_epi32(v, lo), hi);
  return _mm256_add_epi32(v, zp);
}

// Requantizes 16 channels (acc0: 0-7, acc1: 8-15) and stores a.nc of them.
template <typename W>
static inline __attribute__((always_inline)) void Store16(const BlockArgs<W>& a,
                                                          __m256i acc0,
                                                          __m256i acc1,
                                                          int8_t* o) {
  const __m256i r0 = Requant(acc0, a.rs0, a.ls0, a.lo, a.hi, a.zp);
  const __m256i r1 = Requant(acc1, a.rs1, a.ls1, a.lo, a.hi, a.zp);
  // Values are already in [-128, 127]: the saturating packs are exact.
  const __m256i p16 =
      _mm256_permute4x64_epi64(_mm256_packs_epi32(r0, r1), 0xD8);
  const __m128i p8 = _mm_packs_epi16(_mm256_castsi256_si128(p16),
                                     _mm256_extracti128_si256(p16, 1));
  if (a.nc == kConvOcBlock) {
    _mm_storeu_si128(reinterpret_cast<__m128i*>(o), p8);
  } else {
    alignas(16) int8_t tmp[16];
    _mm_store_si128(reinterpret_cast<__m128i*>(tmp), p8);
    std::memcpy(o, tmp, a.nc);
  }
}

}  // namespace conv_avx
}  // namespace vtaserve::cpu

#endif  // VTASERVE_CPU_BACKEND_KERNELS_CONV_BLOCK_AVX_H_
