// Elementwise and layout kernels of the CPU backend. Each processes the
// index range [begin, end) it is given (elements, or rows where stated), so
// the caller can split the work over threads. Integer semantics are those of
// engine/graph.h and engine/reference_ops.cc, bit for bit; float ops use the
// reference's exact expressions. Thread-safe on disjoint ranges; none
// allocates.
#ifndef VTASERVE_CPU_BACKEND_KERNELS_ELEMENTWISE_H_
#define VTASERVE_CPU_BACKEND_KERNELS_ELEMENTWISE_H_

#include <cstdint>

#include "cpu_backend/kernels/layout.h"
#include "engine/graph.h"

namespace vtaserve::cpu {

// y = clamp(((a*ma + b*mb + bias) >> shift) + zp, lo, hi); a, b, y share a
// layout.
void AddS8(const engine::AddParams& p, const int8_t* a, const int8_t* b,
           int8_t* y, int64_t begin, int64_t end);
// AddS8 with vpmaddwd on AVX2. Falls back to AddS8 for multipliers outside
// int16. REQUIRES: the CPU supports AVX2.
void AddS8Avx2(const engine::AddParams& p, const int8_t* a, const int8_t* b,
               int8_t* y, int64_t begin, int64_t end);
// y = max(x, zero_point).
void ReluS8(int32_t zero_point, const int8_t* x, int8_t* y, int64_t begin,
            int64_t end);
// y = x ^ 0x80 (uint8 <-> int8).
void CastU8S8(const uint8_t* x, uint8_t* y, int64_t begin, int64_t end);
// y = clamp(round_half_even(x / scale) + zp, -128, 127).
void QuantizeF32ToS8(const engine::QuantizeParams& p, const float* x, int8_t* y,
                     int64_t begin, int64_t end);
// QuantizeF32ToS8 on AVX2, eight floats per vector. REQUIRES: AVX2.
void QuantizeF32ToS8Avx2(const engine::QuantizeParams& p, const float* x,
                         int8_t* y, int64_t begin, int64_t end);
// y = (x - zp) * scale.
void DequantizeS8ToF32(const engine::QuantizeParams& p, const int8_t* x,
                       float* y, int64_t begin, int64_t end);
// Softmax along rows of length n, rows [begin, end).
void SoftmaxF32(const float* x, float* y, int64_t n, int64_t begin,
                int64_t end);
// Copies a [C, H, W] tensor of elem_size-byte elements between layouts, for
// rows h in [begin, end).
void Relayout(const uint8_t* x, const Strides& xs, uint8_t* y,
              const Strides& ys, int64_t c, int64_t w, int elem_size,
              int64_t begin, int64_t end);

}  // namespace vtaserve::cpu

#endif  // VTASERVE_CPU_BACKEND_KERNELS_ELEMENTWISE_H_
