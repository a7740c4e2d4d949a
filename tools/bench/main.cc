// vtaserve-bench: dispatches to the benchmark named by the first argument.
// `vtaserve-bench all` runs every benchmark with default arguments.
#include <cstdio>
#include <cstring>

#define VTASERVE_BENCH(name, fn) int fn(int argc, char** argv);
#include "bench_table.inc"
#undef VTASERVE_BENCH

namespace {

struct BenchEntry {
  const char* name;
  int (*run)(int, char**);
};

constexpr BenchEntry kBenches[] = {
#define VTASERVE_BENCH(name, fn) {name, fn},
#include "bench_table.inc"
#undef VTASERVE_BENCH
};

void Usage() {
  std::fprintf(stderr,
               "usage: vtaserve-bench <benchmark|all> [flags]\nbenchmarks:");
  for (const BenchEntry& b : kBenches) std::fprintf(stderr, " %s", b.name);
  std::fprintf(stderr, "\n");
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    Usage();
    return 2;
  }
  if (std::strcmp(argv[1], "all") == 0) {
    int rc = 0;
    for (const BenchEntry& b : kBenches) {
      char* args[] = {const_cast<char*>(b.name), nullptr};
      std::printf("== %s ==\n", b.name);
      std::fflush(stdout);
      if (b.run(1, args) != 0) rc = 1;
    }
    return rc;
  }
  for (const BenchEntry& b : kBenches) {
    if (std::strcmp(argv[1], b.name) == 0) return b.run(argc - 1, argv + 1);
  }
  Usage();
  return 2;
}
