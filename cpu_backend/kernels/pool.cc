#include "cpu_backend/kernels/pool.h"

#include <algorithm>

namespace vtaserve::cpu {

VTASERVE_CPU_MULTIVERSION
void MaxPoolS8(const engine::PoolParams& p, const PoolShape& s, const int8_t* x,
               const Strides& xs, int8_t* y, int64_t begin, int64_t end) {
  for (int64_t oh = begin; oh < end; ++oh) {
    const auto [h0, h1] =
        PoolWindow(oh, p.stride_h, p.pad_top, p.kernel_h, s.in_h);
    for (int64_t ow = 0; ow < s.out_w; ++ow) {
      const auto [w0, w1] =
          PoolWindow(ow, p.stride_w, p.pad_left, p.kernel_w, s.in_w);
      int8_t* out = y + (oh * s.out_w + ow) * s.c;
      std::fill(out, out + s.c, int8_t{-128});
      for (int64_t ih = h0; ih < h1; ++ih) {
        for (int64_t iw = w0; iw < w1; ++iw) {
          const int8_t* in = x + ih * xs.h + iw * xs.w;
          if (xs.c == 1) {
            for (int64_t c = 0; c < s.c; ++c) out[c] = std::max(out[c], in[c]);
          } else {
            for (int64_t c = 0; c < s.c; ++c) {
              out[c] = std::max(out[c], in[c * xs.c]);
            }
          }
        }
      }
    }
  }
}

void GlobalAvgPoolS8(const engine::GapParams& p, int64_t c, int64_t h,
                     int64_t w, const int8_t* x, const Strides& xs, int8_t* y,
                     int64_t begin, int64_t end) {
  constexpr int64_t kChunk = 64;
  for (int64_t c0 = begin; c0 < end; c0 += kChunk) {
    const int64_t n = std::min(kChunk, end - c0);
    int64_t sum[kChunk] = {};
    for (int64_t ih = 0; ih < h; ++ih) {
      for (int64_t iw = 0; iw < w; ++iw) {
        const int8_t* in = x + c0 * xs.c + ih * xs.h + iw * xs.w;
        for (int64_t i = 0; i < n; ++i) sum[i] += in[i * xs.c];
      }
    }
    for (int64_t i = 0; i < n; ++i) {
      const int64_t v =
          ((sum[i] * p.multiplier + p.bias) >> p.shift) + p.output_zero_point;
      y[c0 + i] = static_cast<int8_t>(std::clamp<int64_t>(v, -128, 127));
    }
  }
}

}  // namespace vtaserve::cpu
