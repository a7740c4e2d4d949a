// Small helpers shared by the vtaserve-bench subcommands.
#ifndef VTASERVE_TOOLS_BENCH_BENCH_UTIL_H_
#define VTASERVE_TOOLS_BENCH_BENCH_UTIL_H_

#include <algorithm>
#include <string>
#include <vector>

#include "engine/backend.h"

namespace vtaserve::bench {

// Median of `v` (the mean of the two middle values for an even count);
// `empty` when v is empty.
inline double Median(std::vector<double> v, double empty = -1.0) {
  if (v.empty()) return empty;
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 == 1 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

// A layer's counter `name`, 0 when the backend did not report it.
inline double Counter(const engine::LayerTiming& t, const std::string& name) {
  auto it = t.counters.find(name);
  return it == t.counters.end() ? 0.0 : it->second;
}

}  // namespace vtaserve::bench

#endif  // VTASERVE_TOOLS_BENCH_BENCH_UTIL_H_
