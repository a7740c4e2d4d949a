// Pooling kernels of the CPU backend: MaxPool and GlobalAvgPool with the
// integer semantics of engine/graph.h, reading any layout through element
// strides. Thread-safe on disjoint ranges; neither allocates.
#ifndef VTASERVE_CPU_BACKEND_KERNELS_POOL_H_
#define VTASERVE_CPU_BACKEND_KERNELS_POOL_H_

#include <cstdint>

#include "cpu_backend/kernels/layout.h"
#include "engine/graph.h"

namespace vtaserve::cpu {

struct PoolShape {
  int64_t c = 0, in_h = 0, in_w = 0, out_h = 0, out_w = 0;
};

// The in-image input range [begin, end) of output index `o` along one axis
// (stride, leading pad, kernel extent, input size).
struct PoolSpan {
  int64_t begin = 0, end = 0;
};
inline PoolSpan PoolWindow(int64_t o, int64_t stride, int64_t pad,
                           int64_t kernel, int64_t in) {
  const int64_t first = o * stride - pad;
  return {first < 0 ? 0 : first, first + kernel < in ? first + kernel : in};
}

// MaxPool output rows [begin, end) into y, int8 NHWC [out_h][out_w][c].
// Out-of-image taps are skipped (validation guarantees one real tap).
void MaxPoolS8(const engine::PoolParams& p, const PoolShape& shape,
               const int8_t* x, const Strides& xs, int8_t* y, int64_t begin,
               int64_t end);

// MaxPoolS8 with AVX2 byte maxima when x is channel-contiguous (xs.c == 1,
// the backend's NHWC); other layouts go to MaxPoolS8. REQUIRES: AVX2.
void MaxPoolS8Avx2(const engine::PoolParams& p, const PoolShape& shape,
                   const int8_t* x, const Strides& xs, int8_t* y, int64_t begin,
                   int64_t end);

// GlobalAvgPool of channels [begin, end) into y[c].
void GlobalAvgPoolS8(const engine::GapParams& p, int64_t c, int64_t h,
                     int64_t w, const int8_t* x, const Strides& xs, int8_t* y,
                     int64_t begin, int64_t end);

}  // namespace vtaserve::cpu

#endif  // VTASERVE_CPU_BACKEND_KERNELS_POOL_H_
