// AVX2 variants of the elementwise kernels (declared in elementwise.h).
// Compiled for AVX2 by target pragma only, so the rest of the binary stays
// portable; the backend calls them only after CPUID agrees. Results are bit
// for bit those of the portable kernels: integer ops wrap the same way, and
// the float ops are the same IEEE operations (division, round-half-even,
// addition) in the same order.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "cpu_backend/kernels/elementwise.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2")

namespace vtaserve::cpu {

void AddS8Avx2(const engine::AddParams& p, const int8_t* a, const int8_t* b,
               int8_t* y, int64_t begin, int64_t end) {
  constexpr int32_t kI16Min = -32768, kI16Max = 32767;
  if (p.multiplier_a < kI16Min || p.multiplier_a > kI16Max ||
      p.multiplier_b < kI16Min || p.multiplier_b > kI16Max ||
      p.clamp_min < -128 || p.clamp_max > 127 || p.shift < 0 || p.shift > 31) {
    AddS8(p, a, b, y, begin, end);
    return;
  }
  // One vpmaddwd computes a * ma + b * mb for interleaved (a, b) int16 pairs.
  const __m256i m = _mm256_set1_epi32(
      static_cast<int32_t>((static_cast<uint32_t>(p.multiplier_b) << 16) |
                           (static_cast<uint32_t>(p.multiplier_a) & 0xffffu)));
  const __m256i bias = _mm256_set1_epi32(p.bias);
  const __m256i zp = _mm256_set1_epi32(p.output_zero_point);
  const __m128i shift = _mm_cvtsi32_si128(p.shift);
  const __m256i lo = _mm256_set1_epi8(static_cast<int8_t>(p.clamp_min));
  const __m256i hi = _mm256_set1_epi8(static_cast<int8_t>(p.clamp_max));
  // 16 int8 of a and b -> 16 int16 results, in order: the unpacks and the
  // saturating pack split and join the 128-bit lanes the same way.
  auto half = [&](__m128i a8, __m128i b8) {
    const __m256i a16 = _mm256_cvtepi8_epi16(a8);
    const __m256i b16 = _mm256_cvtepi8_epi16(b8);
    __m256i s0 = _mm256_madd_epi16(_mm256_unpacklo_epi16(a16, b16), m);
    __m256i s1 = _mm256_madd_epi16(_mm256_unpackhi_epi16(a16, b16), m);
    s0 = _mm256_add_epi32(_mm256_sra_epi32(_mm256_add_epi32(s0, bias), shift),
                          zp);
    s1 = _mm256_add_epi32(_mm256_sra_epi32(_mm256_add_epi32(s1, bias), shift),
                          zp);
    return _mm256_packs_epi32(s0, s1);
  };
  int64_t i = begin;
  for (; i + 32 <= end; i += 32) {
    const __m256i va =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + i));
    const __m256i vb =
        _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + i));
    const __m256i r0 =
        half(_mm256_castsi256_si128(va), _mm256_castsi256_si128(vb));
    const __m256i r1 =
        half(_mm256_extracti128_si256(va, 1), _mm256_extracti128_si256(vb, 1));
    // Saturation to int8 then the clamp equals the clamp of the int32 value,
    // since [clamp_min, clamp_max] lies inside the int8 range.
    __m256i r = _mm256_permute4x64_epi64(_mm256_packs_epi16(r0, r1), 0xD8);
    r = _mm256_min_epi8(_mm256_max_epi8(r, lo), hi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), r);
  }
  AddS8(p, a, b, y, i, end);
}

void QuantizeF32ToS8Avx2(const engine::QuantizeParams& p, const float* x,
                         int8_t* y, int64_t begin, int64_t end) {
  const __m256 scale = _mm256_set1_ps(p.scale);
  const __m256 zp = _mm256_set1_ps(static_cast<float>(p.zero_point));
  const __m256 lo = _mm256_set1_ps(-128.0f);
  const __m256 hi = _mm256_set1_ps(127.0f);
  // NaN quantizes to the clamped zero point (engine::QuantizeValue).
  const __m256 nan_value =
      _mm256_set1_ps(static_cast<float>(std::clamp(p.zero_point, -128, 127)));
  auto eight = [&](const float* in) {
    const __m256 q =
        _mm256_round_ps(_mm256_div_ps(_mm256_loadu_ps(in), scale),
                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_add_ps(q, zp), lo), hi);
    v = _mm256_blendv_ps(v, nan_value, _mm256_cmp_ps(q, q, _CMP_UNORD_Q));
    return _mm256_cvtps_epi32(v);  // integral and in range: exact
  };
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  int64_t i = begin;
  for (; i + 32 <= end; i += 32) {
    const __m256i ab = _mm256_packs_epi32(eight(x + i), eight(x + i + 8));
    const __m256i cd = _mm256_packs_epi32(eight(x + i + 16), eight(x + i + 24));
    const __m256i r =
        _mm256_permutevar8x32_epi32(_mm256_packs_epi16(ab, cd), order);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(y + i), r);
  }
  QuantizeF32ToS8(p, x, y, i, end);
}

}  // namespace vtaserve::cpu

#pragma GCC pop_options
