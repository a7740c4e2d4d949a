#include "cpu_backend/kernels/elementwise.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "engine/reference_ops.h"

namespace vtaserve::cpu {

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

void ReluS8(int32_t zero_point, const int8_t* x, int8_t* y, int64_t begin,
            int64_t end) {
  const int8_t z = static_cast<int8_t>(zero_point);
  for (int64_t i = begin; i < end; ++i) y[i] = std::max(x[i], z);
}

void CastU8S8(const uint8_t* x, uint8_t* y, int64_t begin, int64_t end) {
  for (int64_t i = begin; i < end; ++i) y[i] = x[i] ^ 0x80;
}

void QuantizeF32ToS8(const engine::QuantizeParams& p, const float* x,
                     int8_t* y, int64_t begin, int64_t end) {
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
      RelayoutT(x, xs, y, ys, c, w, begin, end);
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
