#include "vta_backend/sim/gemm_kernels.h"

#include <cstring>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define VTASERVE_SIM_X86 1
#endif

namespace vtaserve::vta::sim {
namespace {

// Loop driver of the per-uop kernels: calls body(acc_elem, inp_elem,
// wgt_elem) for every uop execution in hardware order whose destination is
// in [dst_lo, dst_hi), and marks OUT as tracking ACC. A macro so that the
// AVX2 copy is compiled with the AVX2 target (a target function can only
// inline callees of the same target).
#define VTASERVE_SIM_FOR_EACH_UOP(c, acc_lanes, inp_lanes, wgt_lanes, body) \
  for (uint32_t o_ = 0; o_ < (c).iter_out; ++o_) {                          \
    for (uint32_t i_ = 0; i_ < (c).iter_in; ++i_) {                         \
      const uint32_t d0_ = o_ * (c).dst_out + i_ * (c).dst_in;              \
      const uint32_t s0_ = o_ * (c).src_out + i_ * (c).src_in;              \
      const uint32_t w0_ = o_ * (c).wgt_out + i_ * (c).wgt_in;              \
      for (uint32_t u_ = (c).uop_bgn; u_ < (c).uop_end; ++u_) {             \
        const isa::Uop& uop_ = (c).uops[u_];                                \
        const uint32_t a_ = uop_.dst_idx + d0_;                             \
        if (a_ < (c).dst_lo || a_ >= (c).dst_hi) continue;                  \
        (c).out_tracks[a_] = 1;                                             \
        body((c).acc + size_t{a_} * (acc_lanes),                            \
             (c).inp + size_t{uop_.src_idx + s0_} * (inp_lanes),            \
             (c).wgt + size_t{uop_.wgt_idx + w0_} * (wgt_lanes));           \
      }                                                                     \
    }                                                                       \
  }

// One hardware loop of a GEMM: trip count and index factors.
struct Loop {
  uint32_t n = 1, dst = 0, src = 0, wgt = 0;
};

// The instruction's loops rearranged for weight reuse: `inner` has weight
// factor 0 (or is empty), so one weight block serves all its iterations;
// `reduce` (or empty) has destination factor 0, so its iterations
// accumulate into the same elements, which stay in registers meanwhile;
// `outer1` (outermost) and `outer2` hold the rest.
struct LoopNest {
  Loop outer1, outer2, reduce, inner;
};

// Most `reduce` iterations kept (one widened weight block each).
constexpr uint32_t kMaxReduce = 8;

LoopNest ArrangeLoops(const GemmCall& c) {
  const Loop out{c.iter_out, c.dst_out, c.src_out, c.wgt_out};
  const Loop in{c.iter_in, c.dst_in, c.src_in, c.wgt_in};
  LoopNest nest;
  if (out.wgt == 0 && (in.wgt != 0 || out.n >= in.n)) {
    nest.outer1 = in;
    nest.inner = out;
  } else if (in.wgt == 0) {
    nest.outer1 = out;
    nest.inner = in;
  } else {
    nest.outer1 = out;
    nest.outer2 = in;
    return nest;
  }
  if (nest.outer1.dst == 0 && nest.outer1.n <= kMaxReduce) {
    nest.reduce = nest.outer1;
    nest.outer1 = Loop{};
  }
  return nest;
}

// Iterations [*begin, *end) of `inner` whose destination d0 + l * inner.dst
// lies in [lo, hi).
inline void InnerRange(uint32_t d0, const Loop& inner, uint32_t lo, uint32_t hi,
                       uint32_t* begin, uint32_t* end) {
  if (inner.dst == 0) {
    *begin = 0;
    *end = (d0 >= lo && d0 < hi) ? inner.n : 0;
    return;
  }
  const uint64_t f = inner.dst;
  const uint64_t last = d0 + uint64_t{inner.n - 1} * f;
  // Divisions only when the range cuts the sequence (split GEMMs).
  const uint64_t b = d0 >= lo ? 0 : (uint64_t{lo} - d0 + f - 1) / f;
  const uint64_t e = last < hi  ? inner.n
                     : d0 >= hi ? 0
                                : (uint64_t{hi} - d0 + f - 1) / f;
  *begin = static_cast<uint32_t>(b < inner.n ? b : inner.n);
  *end = static_cast<uint32_t>(e < inner.n ? e : inner.n);
  if (*end < *begin) *end = *begin;
}

#ifdef VTASERVE_SIM_X86
// One uop: acc[b][o] += sum_k inp[b][k] * wgt[o][k], BO a multiple of 8.
// For each k pair the two int16 inputs are broadcast as one 32-bit lane and
// multiplied by the interleaved weight pairs of 8 outputs (vpmaddwd): exact,
// since |a0*w0 + a1*w1| <= 2^15; the int32 adds wrap like the hardware.
// Runtime shape (BO % 8 == 0, BI even, any batch).
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

__attribute__((target("avx2"))) void GemmS8S8S32Avx2Any(const GemmCall& c) {
  const int batch = c.batch, bi = c.block_in, bo = c.block_out;
#define VTASERVE_SIM_BODY(a, i, w) UopAvx2Any(batch, bi, bo, a, i, w)
  VTASERVE_SIM_FOR_EACH_UOP(c, batch * bo, batch * bi, bi * bo,
                            VTASERVE_SIM_BODY)
#undef VTASERVE_SIM_BODY
}

// Blocked kernel, batch 1, BLOCK_IN x BLOCK_OUT = kBI x kBO.
//
// Weights: one kBI x kBO block widened to int16 pairs, w[kp][j] holding
// outputs 8j..8j+7 of k pair kp. Items: (dst, src) element pairs that use
// that block; kN of them go through the block at once, so each weight
// vector loaded serves kN inputs (kN accumulator sets stay in registers).
template <int kBI, int kBO>
struct WeightBlock {
  __m256i w[kBI / 2][kBO / 8];
};

template <int kBI, int kBO>
__attribute__((target("avx2"), always_inline)) inline void WidenWeights(
    const int8_t* wgt, WeightBlock<kBI, kBO>* block) {
#pragma GCC unroll 16
  for (int kp = 0; kp < kBI / 2; ++kp) {
#pragma GCC unroll 4
    for (int j = 0; j < kBO / 8; ++j) {
      block->w[kp][j] = _mm256_cvtepi8_epi16(_mm_loadu_si128(
          reinterpret_cast<const __m128i*>(wgt + (kp * kBO + 8 * j) * 2)));
    }
  }
}

// acc[n * acc_step] += sum_r inp[n * inp_step + r * red_step] x W_r for
// n < kN, r < nred (in elements; the kN destinations must be distinct, i.e.
// acc_step != 0 when kN > 1). The accumulators stay in registers over r.
template <int kBI, int kBO, int kN>
__attribute__((target("avx2"), always_inline)) inline void ApplyBlock(
    int32_t* acc, size_t acc_step, const int16_t* inp, size_t inp_step,
    const WeightBlock<kBI, kBO>* blocks, uint32_t nred, size_t red_step) {
  // Each accumulator is a chain of dependent adds; with few items, k pairs
  // alternate between kSets partial sums so that about 8 chains are in
  // flight (else the add latency, not the multipliers, sets the pace).
  constexpr int kSets = kN >= 3 ? 1 : 4 / kN;
  static_assert((kBI / 2) % kSets == 0);
  __m256i sum[kSets][kN][kBO / 8];
#pragma GCC unroll 4
  for (int n = 0; n < kN; ++n) {
#pragma GCC unroll 4
    for (int j = 0; j < kBO / 8; ++j) {
      sum[0][n][j] = _mm256_loadu_si256(
          reinterpret_cast<const __m256i*>(acc + n * acc_step * kBO + 8 * j));
#pragma GCC unroll 4
      for (int t = 1; t < kSets; ++t) sum[t][n][j] = _mm256_setzero_si256();
    }
  }
  // Input rows of the kN items, advanced by one reduction step each turn.
  const int16_t* x[kN];
#pragma GCC unroll 4
  for (int n = 0; n < kN; ++n) x[n] = inp + n * inp_step * kBI;
  const size_t x_step = red_step * kBI;
  const WeightBlock<kBI, kBO>* const blocks_end = blocks + nred;
  for (const WeightBlock<kBI, kBO>* bp = blocks; bp != blocks_end; ++bp) {
    const WeightBlock<kBI, kBO>& block = *bp;
#pragma GCC unroll 16
    for (int kp = 0; kp < kBI / 2; ++kp) {
      const int t = kp % kSets;
#pragma GCC unroll 4
      for (int n = 0; n < kN; ++n) {
        int32_t pair;
        std::memcpy(&pair, x[n] + 2 * kp, sizeof(pair));
        const __m256i bc = _mm256_set1_epi32(pair);
#pragma GCC unroll 4
        for (int j = 0; j < kBO / 8; ++j) {
          sum[t][n][j] = _mm256_add_epi32(
              sum[t][n][j], _mm256_madd_epi16(bc, block.w[kp][j]));
          // Keeps the accumulation a chain in registers: without it GCC
          // reassociates the sum, computes every product first and spills.
          asm("" : "+x"(sum[t][n][j]));
        }
      }
    }
#pragma GCC unroll 4
    for (int n = 0; n < kN; ++n) x[n] += x_step;
  }
#pragma GCC unroll 4
  for (int n = 0; n < kN; ++n) {
#pragma GCC unroll 4
    for (int j = 0; j < kBO / 8; ++j) {
#pragma GCC unroll 4
      for (int t = 1; t < kSets; ++t) {
        sum[0][n][j] = _mm256_add_epi32(sum[0][n][j], sum[t][n][j]);
      }
      _mm256_storeu_si256(
          reinterpret_cast<__m256i*>(acc + n * acc_step * kBO + 8 * j),
          sum[0][n][j]);
    }
  }
}

// Applies the blocks to inner-loop iterations l in [begin, end) of one uop:
// ACC element d0 + l * inner.dst += sum_r INP element
// s0 + l * inner.src + r * reduce.src x block r.
template <int kBI, int kBO>
__attribute__((target("avx2"), always_inline)) inline void ApplyRange(
    const GemmCall& c, const Loop& inner, const Loop& reduce, uint32_t d0,
    uint32_t s0, uint32_t begin, uint32_t end,
    const WeightBlock<kBI, kBO>* blocks) {
  constexpr int kGroup = kBO <= 16 ? 4 : 2;
  uint8_t* const tracks = c.out_tracks;  // a local: uint8_t stores alias c
  for (uint32_t l = begin; l < end; ++l) tracks[d0 + l * inner.dst] = 1;
  // The weight vectors are read from memory inside ApplyBlock (vpmaddwd
  // takes a memory operand): hoisting all of them out of these loops would
  // need more registers than AVX2 has and makes the compiler spill the
  // accumulators instead. The empty asm hides the blocks' address.
  const WeightBlock<kBI, kBO>* wb = blocks;
  const size_t ds = inner.dst, ss = inner.src, rs = reduce.src;
  const uint32_t nred = reduce.n;
  uint32_t l = begin;
  if (ds != 0) {
    for (; l + kGroup <= end; l += kGroup) {
      asm("" : "+r"(wb));
      ApplyBlock<kBI, kBO, kGroup>(c.acc + (d0 + l * ds) * kBO, ds,
                                   c.inp + (s0 + l * ss) * kBI, ss, wb, nred,
                                   rs);
    }
    if (kGroup > 3 && l + 3 == end) {
      asm("" : "+r"(wb));
      ApplyBlock<kBI, kBO, 3>(c.acc + (d0 + l * ds) * kBO, ds,
                              c.inp + (s0 + l * ss) * kBI, ss, wb, nred, rs);
      l += 3;
    } else if (kGroup > 2 && l + 2 <= end) {
      asm("" : "+r"(wb));
      ApplyBlock<kBI, kBO, 2>(c.acc + (d0 + l * ds) * kBO, ds,
                              c.inp + (s0 + l * ss) * kBI, ss, wb, nred, rs);
      l += 2;
    }
  }
  for (; l < end; ++l) {
    asm("" : "+r"(wb));
    ApplyBlock<kBI, kBO, 1>(c.acc + (d0 + l * ds) * kBO, 0,
                            c.inp + (s0 + l * ss) * kBI, 0, wb, nred, rs);
  }
}

template <int kBI, int kBO>
__attribute__((target("avx2"))) void GemmS8S8S32Avx2Blocked(const GemmCall& c) {
  const LoopNest nest = ArrangeLoops(c);
  const Loop& inner = nest.inner;
  const Loop& reduce = nest.reduce;
  WeightBlock<kBI, kBO> blocks[kMaxReduce];
  for (uint32_t x1 = 0; x1 < nest.outer1.n; ++x1) {
    for (uint32_t x2 = 0; x2 < nest.outer2.n; ++x2) {
      const uint32_t dx = x1 * nest.outer1.dst + x2 * nest.outer2.dst;
      const uint32_t sx = x1 * nest.outer1.src + x2 * nest.outer2.src;
      const uint32_t wx = x1 * nest.outer1.wgt + x2 * nest.outer2.wgt;
      uint32_t widened = 0;
      bool have_blocks = false;
      for (uint32_t u = c.uop_bgn; u < c.uop_end; ++u) {
        const isa::Uop& uop = c.uops[u];
        const uint32_t d0 = uop.dst_idx + dx;
        uint32_t lb, le;
        InnerRange(d0, inner, c.dst_lo, c.dst_hi, &lb, &le);
        if (lb == le) continue;
        const uint32_t wi = uop.wgt_idx + wx;
        if (!have_blocks || wi != widened) {
          for (uint32_t r = 0; r < reduce.n; ++r) {
            WidenWeights<kBI, kBO>(
                c.wgt + size_t{wi + r * reduce.wgt} * (kBI * kBO), &blocks[r]);
          }
          widened = wi;
          have_blocks = true;
        }
        ApplyRange<kBI, kBO>(c, inner, reduce, d0, uop.src_idx + sx, lb, le,
                             blocks);
      }
    }
  }
}
#endif  // VTASERVE_SIM_X86

inline void UopRef(int batch, int bi, int bo, int32_t* acc, const int16_t* inp,
                   const int8_t* wgt) {
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
    if (config.Batch() == 1) {
      const int bi = config.BlockIn(), bo = config.BlockOut();
      if (bi == 16 && bo == 16) {
        *name = "avx2_blocked_1x16x16";
        return &GemmS8S8S32Avx2Blocked<16, 16>;
      }
      if (bi == 32 && bo == 32) {
        *name = "avx2_blocked_1x32x32";
        return &GemmS8S8S32Avx2Blocked<32, 32>;
      }
      if (bi == 16 && bo == 32) {
        *name = "avx2_blocked_1x16x32";
        return &GemmS8S8S32Avx2Blocked<16, 32>;
      }
      if (bi == 32 && bo == 16) {
        *name = "avx2_blocked_1x32x16";
        return &GemmS8S8S32Avx2Blocked<32, 16>;
      }
    }
    *name = "avx2_any";
    return &GemmS8S8S32Avx2Any;
  }
#endif
  *name = "portable";
  return &GemmS8S8S32Ref;
}

}  // namespace vtaserve::vta::sim
