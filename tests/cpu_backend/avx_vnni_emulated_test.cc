// This machine has no AVX-VNNI, so the AVX-VNNI conv kernel is compiled here
// a second time (the production source, included) with its one VNNI
// instruction, vpdpbusd, replaced by an exact AVX2 emulation; conv_kernel_test
// runs that build over the whole shape sweep. This file also checks the
// emulation against the instruction's definition. The instruction itself is
// still never executed here.
#include "tests/cpu_backend/avx_vnni_emulated.h"

#include <immintrin.h>

#include <cstdint>
#include <cstring>
#include <random>

#include "cpu_backend/cpu_isa.h"
#include "gtest/gtest.h"

namespace vtaserve::cpu::testing {

// vpdpbusd (no saturation): each int32 lane of acc plus the four products
// of a's unsigned bytes and b's signed bytes in that lane, wrapping. The
// byte pairs are widened to int16 (even and odd bytes apart) and summed by
// vpmaddwd, which is exact for u8 x s8.
__attribute__((target("avx2"))) inline __m256i EmulatedDpbusd(__m256i acc,
                                                              __m256i a,
                                                              __m256i b) {
  const __m256i low = _mm256_set1_epi16(0x00FF);
  const __m256i a_even = _mm256_and_si256(a, low);
  const __m256i a_odd = _mm256_srli_epi16(a, 8);
  const __m256i b_even = _mm256_srai_epi16(_mm256_slli_epi16(b, 8), 8);
  const __m256i b_odd = _mm256_srai_epi16(b, 8);
  return _mm256_add_epi32(acc,
                          _mm256_add_epi32(_mm256_madd_epi16(a_even, b_even),
                                           _mm256_madd_epi16(a_odd, b_odd)));
}

}  // namespace vtaserve::cpu::testing

#define VTASERVE_AVX_VNNI_EMULATED 1
#define VTASERVE_AVX_VNNI_DPBUSD ::vtaserve::cpu::testing::EmulatedDpbusd
#include "cpu_backend/kernels/conv_s8_avx_vnni.cc"  // NOLINT(build/include)

namespace vtaserve::cpu {
namespace {

__attribute__((target("avx2"))) void RunEmulated(const int32_t* acc,
                                                 const uint8_t* a,
                                                 const int8_t* b,
                                                 int32_t* out) {
  const __m256i va = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(acc));
  const __m256i vx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a));
  const __m256i vw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b));
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(out),
                      testing::EmulatedDpbusd(va, vx, vw));
}

TEST(AvxVnniEmulationTest, DpbusdMatchesTheInstructionDefinition) {
  if (!CpuSupports(CpuIsa::kAvx2)) GTEST_SKIP() << "this CPU lacks avx2";
  std::mt19937 rng(11);
  std::uniform_int_distribution<int> byte(0, 255), pick(0, 3);
  std::uniform_int_distribution<int32_t> acc32(INT32_MIN, INT32_MAX);
  for (int round = 0; round < 2000; ++round) {
    int32_t acc[8], out[8];
    uint8_t a[32];
    int8_t b[32];
    for (int i = 0; i < 32; ++i) {
      // Extremes often: a in {0, 255}, b in {-128, 127}.
      const int r = pick(rng);
      a[i] = static_cast<uint8_t>(r == 0 ? 255 : r == 1 ? 0 : byte(rng));
      b[i] = static_cast<int8_t>(r == 0 ? -128 : r == 1 ? 127 : byte(rng));
    }
    for (int32_t& v : acc) v = round % 3 == 0 ? INT32_MAX - 5 : acc32(rng);
    RunEmulated(acc, a, b, out);
    for (int lane = 0; lane < 8; ++lane) {
      uint32_t want = static_cast<uint32_t>(acc[lane]);
      for (int j = 0; j < 4; ++j) {
        want += static_cast<uint32_t>(a[4 * lane + j] * b[4 * lane + j]);
      }
      ASSERT_EQ(static_cast<uint32_t>(out[lane]), want)
          << "round " << round << " lane " << lane;
    }
  }
}

}  // namespace
}  // namespace vtaserve::cpu
