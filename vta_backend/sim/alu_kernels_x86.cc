// x86 SIMD ALU kernels of the simulator (AVX2 through a target attribute,
// picked at run time). Empty on other architectures.
#include "vta_backend/sim/alu_kernels.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>

namespace vtaserve::vta::sim {

using isa::AluInsn;
using isa::AluOpcode;

namespace {

// 16 ACC lanes (BATCH x BLOCK_OUT = 1 x 16) with AVX2: each element is two
// vectors. Op(x, y) -> new x, 8 lanes.
#define VTASERVE_SIM_AVX2 __attribute__((target("avx2"), always_inline))
struct VecMin {
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i y) const {
    return _mm256_min_epi32(x, y);
  }
};
struct VecMax {
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i y) const {
    return _mm256_max_epi32(x, y);
  }
};
struct VecAdd {  // wraps, as the hardware
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i y) const {
    return _mm256_add_epi32(x, y);
  }
};
struct VecMul {  // low 32 bits, as the hardware
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i y) const {
    return _mm256_mullo_epi32(x, y);
  }
};
// SHR by a per-lane amount: ShiftRight() lane by lane.
struct VecShr {
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i y) const {
    const __m256i sh = _mm256_sub_epi32(
        _mm256_xor_si256(_mm256_and_si256(y, _mm256_set1_epi32(31)),
                         _mm256_set1_epi32(16)),
        _mm256_set1_epi32(16));
    const __m256i right =
        _mm256_srav_epi32(x, sh);  // sh < 0 lanes replaced below
    const __m256i left =
        _mm256_sllv_epi32(x, _mm256_sub_epi32(_mm256_setzero_si256(), sh));
    return _mm256_blendv_epi8(right, left,
                              _mm256_cmpgt_epi32(_mm256_setzero_si256(), sh));
  }
};
// SHR by one immediate amount (already decoded: right >= 0, left < 0).
struct VecSra {
  __m128i count;
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i) const {
    return _mm256_sra_epi32(x, count);
  }
};
struct VecSll {
  __m128i count;
  VTASERVE_SIM_AVX2 __m256i operator()(__m256i x, __m256i) const {
    return _mm256_sll_epi32(x, count);
  }
};

template <typename Op>
VTASERVE_SIM_AVX2 inline void Alu16Walk(const AluInsn& a, const isa::Uop* uops,
                                        int32_t* acc, uint8_t* tracks, Op op) {
  const uint32_t iter_out = a.iter_out, iter_in = a.iter_in;
  const uint32_t bgn = a.uop_bgn, end = a.uop_end;
  const uint32_t dst_out = a.dst_factor_out, dst_in = a.dst_factor_in;
  const uint32_t src_out = a.src_factor_out, src_in = a.src_factor_in;
  const bool use_imm = a.use_imm;
  const __m256i imm = _mm256_set1_epi32(a.imm);
  for (uint32_t o = 0; o < iter_out; ++o) {
    for (uint32_t i = 0; i < iter_in; ++i) {
      for (uint32_t u = bgn; u < end; ++u) {
        const uint32_t d = uops[u].dst_idx + o * dst_out + i * dst_in;
        __m256i* x = reinterpret_cast<__m256i*>(acc + size_t{d} * 16);
        __m256i y0 = imm, y1 = imm;
        if (!use_imm) {
          const __m256i* y = reinterpret_cast<const __m256i*>(
              acc + size_t{uops[u].src_idx + o * src_out + i * src_in} * 16);
          y0 = _mm256_loadu_si256(y);
          y1 = _mm256_loadu_si256(y + 1);
        }
        const __m256i x0 = _mm256_loadu_si256(x),
                      x1 = _mm256_loadu_si256(x + 1);
        _mm256_storeu_si256(x, op(x0, y0));
        _mm256_storeu_si256(x + 1, op(x1, y1));
        tracks[d] = 1;
      }
    }
  }
}

}  // namespace

__attribute__((target("avx2"))) void Alu16Avx2(const AluInsn& a,
                                               const isa::Uop* uops,
                                               int32_t* acc, uint8_t* tracks,
                                               int) {
  switch (a.alu_opcode) {
    case AluOpcode::kMin:
      Alu16Walk(a, uops, acc, tracks, VecMin{});
      break;
    case AluOpcode::kMax:
      Alu16Walk(a, uops, acc, tracks, VecMax{});
      break;
    case AluOpcode::kAdd:
      Alu16Walk(a, uops, acc, tracks, VecAdd{});
      break;
    case AluOpcode::kMul:
      Alu16Walk(a, uops, acc, tracks, VecMul{});
      break;
    case AluOpcode::kShr:
      if (a.use_imm) {
        const int32_t sh = ((a.imm & 31) ^ 16) - 16;
        if (sh >= 0) {
          Alu16Walk(a, uops, acc, tracks, VecSra{_mm_cvtsi32_si128(sh)});
        } else {
          Alu16Walk(a, uops, acc, tracks, VecSll{_mm_cvtsi32_si128(-sh)});
        }
      } else {
        Alu16Walk(a, uops, acc, tracks, VecShr{});
      }
      break;
  }
}
#undef VTASERVE_SIM_AVX2

}  // namespace vtaserve::vta::sim

#endif  // x86
