// Element strides of a [1, C, H, W] activation in memory, so one kernel
// reads either the engine's NCHW (partition boundaries) or the CPU backend's
// internal NHWC. Plain data; thread-safe.
#ifndef VTASERVE_CPU_BACKEND_KERNELS_LAYOUT_H_
#define VTASERVE_CPU_BACKEND_KERNELS_LAYOUT_H_

#include <cstdint>

// Memory-bound elementwise kernels: GCC clones them for AVX2 and picks the
// clone at load time (ifunc, CPUID), so the portable build keeps running
// everywhere while AVX2 machines get 32-byte vectors.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define VTASERVE_CPU_MULTIVERSION \
  __attribute__((target_clones("avx2", "default")))
#else
#define VTASERVE_CPU_MULTIVERSION
#endif

namespace vtaserve::cpu {

enum class Layout { kNchw, kNhwc };

struct Strides {
  int64_t c = 0, h = 0, w = 0;  // elements between neighbours along C, H, W
};

inline Strides MakeStrides(Layout layout, int64_t c, int64_t h, int64_t w) {
  if (layout == Layout::kNchw) return {h * w, w, 1};
  return {1, w * c, c};
}

}  // namespace vtaserve::cpu

#endif  // VTASERVE_CPU_BACKEND_KERNELS_LAYOUT_H_
