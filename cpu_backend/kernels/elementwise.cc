#include "cpu_backend/kernels/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/reference_ops.h"

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace vtaserve::cpu {

VTASERVE_CPU_MULTIVERSION
void AddS8(const engine::AddParams& p, const int8_t* a, const int8_t* b,
           int8_t* y, int64_t begin, int64_t end) {
  const int32_t ma = p.multiplier_a, mb = p.multiplier_b, bias = p.bias;
  const int32_t shift = p.shift, zp = p.output_zero_point;
  const int32_t lo = p.clamp_min, hi = p.clamp_max;
  for (int64_t i = begin; i < end; ++i) {
    const int32_t acc = a[i] * ma + b[i] * mb + bias;
    const int32_t v = (acc >> shift) + zp;
    y[i] = static_cast<int8_t>(std::min(std::max(v, lo), hi));
  }
}

VTASERVE_CPU_MULTIVERSION
void ReluS8(int32_t zero_point, const int8_t* x, int8_t* y, int64_t begin,
            int64_t end) {
  const int8_t z = static_cast<int8_t>(zero_point);
  for (int64_t i = begin; i < end; ++i) y[i] = std::max(x[i], z);
}

void CastU8S8(const uint8_t* x, uint8_t* y, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) y[i] = x[i] ^ 0x80;
}

void QuantizeF32ToS8(const engine::QuantizeParams& p, const float* x, int8_t* y,
                     int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    y[i] = engine::QuantizeValue(x[i], p.scale, p.zero_point);
  }
}

void DequantizeS8ToF32(const engine::QuantizeParams& p, const int8_t* x,
                       float* y, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) {
    y[i] = static_cast<float>(x[i] - p.zero_point) * p.scale;
  }
}

void SoftmaxF32(const float* x, float* y, int64_t n, int64_t begin,
                int64_t end) {
  for (int64_t r = begin; r < end; ++r) {
    const float* in = x + r * n;
    float* out = y + r * n;
    float mx = -std::numeric_limits<float>::infinity();
    for (int64_t i = 0; i < n; ++i) mx = std::max(mx, in[i]);
    double sum = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      out[i] = std::exp(in[i] - mx);
      sum += out[i];
    }
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(out[i] / sum);
  }
}

namespace {

#if defined(__SSE2__)
// dst row j (16 bytes) = byte j of src rows 0..15: a 16x16 byte transpose in
// four unpack stages (SSE2 is baseline on x86-64).
inline void Transpose16x16(const uint8_t* src, int64_t src_stride, uint8_t* dst,
                           int64_t dst_stride) {
  __m128i a[16], b[16], c[16];
  for (int i = 0; i < 16; ++i) {
    a[i] =
        _mm_loadu_si128(reinterpret_cast<const __m128i*>(src + i * src_stride));
  }
  for (int k = 0; k < 8; ++k) {  // b[k]: cols 0-7, b[8+k]: cols 8-15
    b[k] = _mm_unpacklo_epi8(a[2 * k], a[2 * k + 1]);
    b[k + 8] = _mm_unpackhi_epi8(a[2 * k], a[2 * k + 1]);
  }
  for (int h = 0; h < 16; h += 8) {  // c[4q + k]: cols 4q..4q+3, rows 4k..
    for (int k = 0; k < 4; ++k) {
      c[h + k] = _mm_unpacklo_epi16(b[h + 2 * k], b[h + 2 * k + 1]);
      c[h + 4 + k] = _mm_unpackhi_epi16(b[h + 2 * k], b[h + 2 * k + 1]);
    }
  }
  for (int q = 0; q < 4; ++q) {
    const __m128i lo01 = _mm_unpacklo_epi32(c[4 * q], c[4 * q + 1]);
    const __m128i hi01 = _mm_unpackhi_epi32(c[4 * q], c[4 * q + 1]);
    const __m128i lo23 = _mm_unpacklo_epi32(c[4 * q + 2], c[4 * q + 3]);
    const __m128i hi23 = _mm_unpackhi_epi32(c[4 * q + 2], c[4 * q + 3]);
    uint8_t* d = dst + 4 * q * dst_stride;
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d),
                     _mm_unpacklo_epi64(lo01, lo23));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + dst_stride),
                     _mm_unpackhi_epi64(lo01, lo23));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 2 * dst_stride),
                     _mm_unpacklo_epi64(hi01, hi23));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + 3 * dst_stride),
                     _mm_unpackhi_epi64(hi01, hi23));
  }
}
#endif

// Full 16 x 16 tiles of an int8 row from channel-contiguous (NHWC) to
// pixel-contiguous (NCHW); returns false when the strides do not allow it.
bool TransposeTiles(const uint8_t* xr, const Strides& xs, uint8_t* yr,
                    const Strides& ys, int64_t c, int64_t w) {
#if defined(__SSE2__)
  if (xs.c != 1 || ys.w != 1 || c < 16 || w < 16) return false;
  const int64_t c_full = c / 16 * 16, w_full = w / 16 * 16;
  for (int64_t c0 = 0; c0 < c_full; c0 += 16) {
    for (int64_t w0 = 0; w0 < w_full; w0 += 16) {
      Transpose16x16(xr + w0 * xs.w + c0, xs.w, yr + c0 * ys.c + w0, ys.c);
    }
  }
  // Tails: channels past c_full for every pixel, pixels past w_full.
  for (int64_t ch = 0; ch < c; ++ch) {
    const int64_t from = ch < c_full ? w_full : 0;
    for (int64_t col = from; col < w; ++col) {
      yr[ch * ys.c + col] = xr[col * xs.w + ch];
    }
  }
  return true;
#else
  return false;
#endif
}

template <typename T>
void RelayoutT(const T* x, const Strides& xs, T* y, const Strides& ys,
               int64_t c, int64_t w, int64_t begin, int64_t end) {
  for (int64_t h = begin; h < end; ++h) {
    const T* xr = x + h * xs.h;
    T* yr = y + h * ys.h;
    if (ys.w == 1) {  // writing NCHW: contiguous stores along W
      for (int64_t ch = 0; ch < c; ++ch) {
        const T* xc = xr + ch * xs.c;
        T* yc = yr + ch * ys.c;
        for (int64_t col = 0; col < w; ++col) yc[col] = xc[col * xs.w];
      }
    } else {  // writing NHWC: contiguous stores along C
      for (int64_t col = 0; col < w; ++col) {
        const T* xc = xr + col * xs.w;
        T* yc = yr + col * ys.w;
        for (int64_t ch = 0; ch < c; ++ch) yc[ch] = xc[ch * xs.c];
      }
    }
  }
}

}  // namespace

void Relayout(const uint8_t* x, const Strides& xs, uint8_t* y,
              const Strides& ys, int64_t c, int64_t w, int elem_size,
              int64_t begin, int64_t end) {
  switch (elem_size) {
    case 1:
      for (int64_t h = begin; h < end; ++h) {
        if (!TransposeTiles(x + h * xs.h, xs, y + h * ys.h, ys, c, w)) {
          RelayoutT(x, xs, y, ys, c, w, h, h + 1);
        }
      }
      return;
    case 4:
      RelayoutT(reinterpret_cast<const uint32_t*>(x), xs,
                reinterpret_cast<uint32_t*>(y), ys, c, w, begin, end);
      return;
    default:
      break;
  }
  for (int64_t h = begin; h < end; ++h) {
    for (int64_t ch = 0; ch < c; ++ch) {
      for (int64_t col = 0; col < w; ++col) {
        std::memcpy(y + (ch * ys.c + h * ys.h + col * ys.w) * elem_size,
                    x + (ch * xs.c + h * xs.h + col * xs.w) * elem_size,
                    elem_size);
      }
    }
  }
}

}  // namespace vtaserve::cpu
