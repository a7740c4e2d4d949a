// MaxPoolS8Avx2 (declared in pool.h): channel-contiguous inputs, 32 (then 16)
// channels per vpmaxsb. Compiled for AVX2 by target pragma only; the backend
// calls it only after CPUID agrees.
#include <immintrin.h>

#include <algorithm>
#include <cstdint>

#include "cpu_backend/kernels/pool.h"

#pragma GCC push_options
#pragma GCC target("avx2,fma,bmi,bmi2")

namespace vtaserve::cpu {

void MaxPoolS8Avx2(const engine::PoolParams& p, const PoolShape& s,
                   const int8_t* x, const Strides& xs, int8_t* y, int64_t begin,
                   int64_t end) {
  if (xs.c != 1) {
    MaxPoolS8(p, s, x, xs, y, begin, end);
    return;
  }
  const int64_t c = s.c;
  for (int64_t oh = begin; oh < end; ++oh) {
    const auto [h0, h1] =
        PoolWindow(oh, p.stride_h, p.pad_top, p.kernel_h, s.in_h);
    for (int64_t ow = 0; ow < s.out_w; ++ow) {
      const auto [w0, w1] =
          PoolWindow(ow, p.stride_w, p.pad_left, p.kernel_w, s.in_w);
      int8_t* out = y + (oh * s.out_w + ow) * c;
      const int8_t* base = x + h0 * xs.h + w0 * xs.w;
      int64_t ch = 0;
      for (; ch + 32 <= c; ch += 32) {
        __m256i m = _mm256_set1_epi8(-128);
        for (int64_t ih = h0; ih < h1; ++ih) {
          const int8_t* in = base + (ih - h0) * xs.h + ch;
          for (int64_t iw = w0; iw < w1; ++iw, in += xs.w) {
            m = _mm256_max_epi8(
                m, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(in)));
          }
        }
        _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + ch), m);
      }
      for (; ch + 16 <= c; ch += 16) {
        __m128i m = _mm_set1_epi8(-128);
        for (int64_t ih = h0; ih < h1; ++ih) {
          const int8_t* in = base + (ih - h0) * xs.h + ch;
          for (int64_t iw = w0; iw < w1; ++iw, in += xs.w) {
            m = _mm_max_epi8(
                m, _mm_loadu_si128(reinterpret_cast<const __m128i*>(in)));
          }
        }
        _mm_storeu_si128(reinterpret_cast<__m128i*>(out + ch), m);
      }
      for (; ch < c; ++ch) {
        int8_t m = -128;
        for (int64_t ih = h0; ih < h1; ++ih) {
          for (int64_t iw = w0; iw < w1; ++iw) {
            m = std::max(m, x[ih * xs.h + iw * xs.w + ch]);
          }
        }
        out[ch] = m;
      }
    }
  }
}

}  // namespace vtaserve::cpu

#pragma GCC pop_options
