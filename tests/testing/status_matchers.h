// Status matchers with the names of absl/status/status_matchers.h, which
// Debian's Abseil 20220623 lacks: IsOk(), StatusIs(code[, message matcher]).
#ifndef VTASERVE_TESTS_TESTING_STATUS_MATCHERS_H_
#define VTASERVE_TESTS_TESTING_STATUS_MATCHERS_H_

#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "gmock/gmock.h"

namespace vtaserve::testing {

inline const absl::Status& GetStatus(const absl::Status& s) { return s; }
template <typename T>
const absl::Status& GetStatus(const absl::StatusOr<T>& s) {
  return s.status();
}

MATCHER(IsOk, "is OK") {
  const absl::Status& s = GetStatus(arg);
  if (!s.ok()) *result_listener << "status is " << s;
  return s.ok();
}

MATCHER_P(StatusIs, code,
          "has code " +
              absl::StatusCodeToString(static_cast<absl::StatusCode>(code))) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code;
}

MATCHER_P2(StatusIs, code, message_matcher,
           "has code " +
               absl::StatusCodeToString(static_cast<absl::StatusCode>(code))) {
  const absl::Status& s = GetStatus(arg);
  *result_listener << "status is " << s;
  return s.code() == code &&
         ::testing::Matches(message_matcher)(std::string(s.message()));
}

}  // namespace vtaserve::testing

#define VTASERVE_ASSERT_OK_AND_ASSIGN(lhs, rexpr) \
  VTASERVE_ASSERT_OK_AND_ASSIGN_IMPL_(            \
      VTASERVE_TEST_CONCAT_(vtaserve_test_statusor_, __LINE__), lhs, rexpr)
#define VTASERVE_TEST_CONCAT_INNER_(a, b) a##b
#define VTASERVE_TEST_CONCAT_(a, b) VTASERVE_TEST_CONCAT_INNER_(a, b)
#define VTASERVE_ASSERT_OK_AND_ASSIGN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                        \
  ASSERT_TRUE(statusor.ok()) << statusor.status();                \
  lhs = std::move(statusor).value()

#endif  // VTASERVE_TESTS_TESTING_STATUS_MATCHERS_H_
