// Helpers shared by the ONNX import tests: running an imported graph on the
// reference executor and building deterministic inputs.
#ifndef VTASERVE_TESTS_ENGINE_ONNX_ONNX_TEST_UTIL_H_
#define VTASERVE_TESTS_ENGINE_ONNX_ONNX_TEST_UTIL_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/backend_registry.h"
#include "engine/executor.h"
#include "engine/graph.h"
#include "engine/reference_backend.h"
#include "engine/tensor.h"

namespace vtaserve::engine::testing {

// Runs `graph` once on the reference backend with one input per graph input.
inline absl::StatusOr<std::vector<Tensor>> RunOnReference(
    ModelGraph graph, const std::vector<const Tensor*>& inputs) {
  BackendRegistry registry;
  absl::Status s = registry.Register(CreateReferenceBackend());
  if (!s.ok()) return s;
  PlacementOptions placement;
  placement.preference = {"reference"};
  absl::StatusOr<std::unique_ptr<Executor>> ex =
      Executor::Create(std::move(graph), registry, placement);
  if (!ex.ok()) return ex.status();
  return (*ex)->Run(ExecutionContext{}, inputs);
}

// splitmix64, for inputs that are the same on every platform.
inline uint64_t NextRandom(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

// Uniform random tensor: bytes for (u)int8, [-amplitude, amplitude) floats.
inline Tensor RandomTensor(DataType dtype, std::vector<int64_t> shape,
                           uint64_t seed, float amplitude = 1.0f) {
  Tensor t = std::move(Tensor::Create(dtype, std::move(shape))).value();
  uint64_t state = seed;
  for (int64_t i = 0; i < t.num_elements(); ++i) {
    const uint64_t r = NextRandom(state);
    if (dtype == DataType::kFloat32) {
      t.data<float>()[i] = static_cast<float>(
          ((r >> 40) * (1.0 / (1ull << 24)) * 2.0 - 1.0) * amplitude);
    } else if (dtype == DataType::kInt32) {
      t.data<int32_t>()[i] = static_cast<int32_t>(r >> 32);
    } else {
      t.bytes()[i] = static_cast<uint8_t>(r >> 56);
    }
  }
  return t;
}

// Count of nodes of kind `op`.
inline int CountOps(const ModelGraph& g, OpKind op) {
  int n = 0;
  for (const Node& node : g.nodes) n += node.op == op ? 1 : 0;
  return n;
}

}  // namespace vtaserve::engine::testing

#endif  // VTASERVE_TESTS_ENGINE_ONNX_ONNX_TEST_UTIL_H_
