#include "vta_backend/sim/gemm_kernels.h"

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VTASERVE_SIM_X86 1
#endif

namespace vtaserve::vta::sim {
namespace {

// Loop driver shared by all kernels: calls body(acc_elem, inp_elem, wgt_elem)
// for every uop execution in hardware order and marks OUT as tracking ACC.
// A macro so that the AVX2 copy is compiled with the AVX2 target (a target
// function can only inline callees of the same target).
#define VTASERVE_SIM_FOR_EACH_UOP(c, acc_lanes, inp_lanes, wgt_lanes, body)  \
  for (uint32_t o_ = 0; o_ < (c).iter_out; ++o_) {                            \
    for (uint32_t i_ = 0; i_ < (c).iter_in; ++i_) {                           \
      const uint32_t d0_ = o_ * (c).dst_out + i_ * (c).dst_in;                \
      const uint32_t s0_ = o_ * (c).src_out + i_ * (c).src_in;                \
      const uint32_t w0_ = o_ * (c).wgt_out + i_ * (c).wgt_in;                \
      for (uint32_t u_ = (c).uop_bgn; u_ < (c).uop_end; ++u_) {               \
        const isa::Uop& uop_ = (c).uops[u_];                                  \
        const uint32_t a_ = uop_.dst_idx + d0_;                               \
        (c).out_tracks[a_] = 1;                                               \
        body((c).acc + size_t{a_} * (acc_lanes),                              \
             (c).inp + size_t{uop_.src_idx + s0_} * (inp_lanes),              \
             (c).wgt + size_t{uop_.wgt_idx + w0_} * (wgt_lanes));             \
      }                                                                       \
    }                                                                         \
  }

#ifdef VTASERVE_SIM_X86
// One uop: acc[b][o] += sum_k inp[b][k] * wgt[o][k], BO a multiple of 8.
// For each k pair the two int16 inputs are broadcast as one 32-bit lane and
// multiplied by the interleaved weight pairs of 8 outputs (vpmaddwd): exact,
// since |a0*w0 + a1*w1| <= 2^15; the int32 adds wrap like the hardware.
template <int kBI, int kBO, int kBatch>
__attribute__((target("avx2"), always_inline)) inline void UopAvx2(
    int32_t* acc, const int16_t* inp, const int8_t* wgt) {
  constexpr int batch = kBatch;
  static_assert(kBO % 8 == 0 && kBI % 2 == 0);
  for (int b = 0; b < batch; ++b) {
    __m256i sum[kBO / 8];
    for (int j = 0; j < kBO / 8; ++j) {
      sum[j] = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(acc + b * kBO + 8 * j));
    }
    const int16_t* x = inp + b * kBI;
    for (int kp = 0; kp < kBI / 2; ++kp) {
      int32_t pair;
      std::memcpy(&pair, x + 2 * kp, sizeof(pair));
      const __m256i bc = _mm256_set1_epi32(pair);
      const int8_t* w = wgt + kp * kBO * 2;
      for (int j = 0; j < kBO / 8; ++j) {
        const __m256i wv = _mm256_cvtepi8_epi16(
            _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + 16 * j)));
        sum[j] = _mm256_add_epi32(sum[j], _mm256_madd_epi16(bc, wv));
      }
    }
    for (int j = 0; j < kBO / 8; ++j) {
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + b * kBO + 8 * j),
                          sum[j]);
    }
  }
}

// Runtime-shape variant (BO % 8 == 0, BI even).
__attribute__((target("avx2"), always_inline)) inline void UopAvx2Any(
    int batch, int bi, int bo, int32_t* acc, const int16_t* inp,
    const int8_t* wgt) {
  for (int b = 0; b < batch; ++b) {
    const int16_t* x = inp + b * bi;
    for (int j = 0; j < bo / 8; ++j) {
      __m256i sum = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(acc + b * bo + 8 * j));
      for (int kp = 0; kp < bi / 2; ++kp) {
        int32_t pair;
        std::memcpy(&pair, x + 2 * kp, sizeof(pair));
        const __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128(
            reinterpret_cast<const __m128i*>(wgt + (kp * bo + 8 * j) * 2)));
        sum = _mm256_add_epi32(sum,
                               _mm256_madd_epi16(_mm256_set1_epi32(pair), wv));
      }
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(acc + b * bo + 8 * j),
                          sum);
    }
  }
}

// Fixed shape: BATCH x BLOCK_IN x BLOCK_OUT known at compile time so the
// accumulators stay in registers.
template <int kBI, int kBO, int kBatch>
__attribute__((target("avx2"))) void GemmS8S8S32Avx2(const GemmCall& c) {
  constexpr int batch = kBatch;
#define VTASERVE_SIM_BODY(a, i, w) UopAvx2<kBI, kBO, kBatch>(a, i, w)
  VTASERVE_SIM_FOR_EACH_UOP(c, batch * kBO, batch * kBI, kBI * kBO,
                            VTASERVE_SIM_BODY)
#undef VTASERVE_SIM_BODY
}

__attribute__((target("avx2"))) void GemmS8S8S32Avx2Any(const GemmCall& c) {
  const int batch = c.batch, bi = c.block_in, bo = c.block_out;
#define VTASERVE_SIM_BODY(a, i, w) UopAvx2Any(batch, bi, bo, a, i, w)
  VTASERVE_SIM_FOR_EACH_UOP(c, batch * bo, batch * bi, bi * bo,
                            VTASERVE_SIM_BODY)
#undef VTASERVE_SIM_BODY
}
#endif  // VTASERVE_SIM_X86

inline void UopRef(int batch, int bi, int bo, int32_t* acc,
                   const int16_t* inp, const int8_t* wgt) {
  for (int b = 0; b < batch; ++b) {
    uint32_t* accb = reinterpret_cast<uint32_t*>(acc + b * bo);
    const int16_t* x = inp + b * bi;
    for (int kp = 0; kp < bi / 2; ++kp) {
      const int32_t a0 = x[2 * kp], a1 = x[2 * kp + 1];
      const int8_t* w = wgt + kp * bo * 2;
      for (int o = 0; o < bo; ++o) {
        accb[o] += static_cast<uint32_t>(a0 * w[2 * o] + a1 * w[2 * o + 1]);
      }
    }
  }
}

}  // namespace

void GemmS8S8S32Ref(const GemmCall& c) {
  const int batch = c.batch, bi = c.block_in, bo = c.block_out;
#define VTASERVE_SIM_BODY(a, i, w) UopRef(batch, bi, bo, a, i, w)
  VTASERVE_SIM_FOR_EACH_UOP(c, batch * bo, batch * bi, bi * bo,
                            VTASERVE_SIM_BODY)
#undef VTASERVE_SIM_BODY
}

GemmFn SelectGemmKernel(const VtaConfig& config, bool allow_simd,
                        const char** name) {
#ifdef VTASERVE_SIM_X86
  if (allow_simd && __builtin_cpu_supports("avx2") &&
      config.BlockOut() % 8 == 0) {
    if (config.Batch() == 1 && config.BlockIn() == 16 &&
        config.BlockOut() == 16) {
      *name = "avx2_1x16x16";
      return &GemmS8S8S32Avx2<16, 16, 1>;
    }
    if (config.Batch() == 1 && config.BlockIn() == 32 &&
        config.BlockOut() == 32) {
      *name = "avx2_1x32x32";
      return &GemmS8S8S32Avx2<32, 32, 1>;
    }
    *name = "avx2_any";
    return &GemmS8S8S32Avx2Any;
  }
#endif
  *name = "portable";
  return &GemmS8S8S32Ref;
}

}  // namespace vtaserve::vta::sim
