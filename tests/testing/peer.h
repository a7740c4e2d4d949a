// The peer-test policy of docs/testing.md for GoogleTest: a test that
// compares against or drives a third-party program (a "peer": ONNX Runtime
// under node, Prometheus, ...) and finds it missing SKIPS with `message`
// on a developer's machine and FAILS with the same message under CI=true,
// where scripts/setup-*.sh must have installed it.
#ifndef VTASERVE_TESTS_TESTING_PEER_H_
#define VTASERVE_TESTS_TESTING_PEER_H_

#include <cstdlib>
#include <cstring>

#include "gtest/gtest.h"

namespace vtaserve::testing {

// True when the environment says this is a CI run (CI=true or CI=1, as CI
// services and .ci/run set it).
inline bool InCi() {
  const char* ci = std::getenv("CI");
  return ci != nullptr &&
         (std::strcmp(ci, "true") == 0 || std::strcmp(ci, "1") == 0);
}

}  // namespace vtaserve::testing

// In a test body or SetUp (it returns from the function): when `available`
// is false, fails under CI and skips elsewhere, with `message` (streamable)
// naming the missing peer and how to install it.
#define VTASERVE_REQUIRE_PEER(available, message)                             \
  do {                                                                        \
    if (!(available)) {                                                       \
      if (::vtaserve::testing::InCi()) {                                      \
        GTEST_FAIL() << "peer missing (CI=true, so this fails): " << message; \
      } else {                                                                \
        GTEST_SKIP() << "peer missing (fails under CI=true): " << message;    \
      }                                                                       \
    }                                                                         \
  } while (0)

#endif  // VTASERVE_TESTS_TESTING_PEER_H_
