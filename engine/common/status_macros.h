// Status propagation macros shared by every vtaserve module (mediapipe shape).
// Header-only; no state.
#ifndef VTASERVE_ENGINE_COMMON_STATUS_MACROS_H_
#define VTASERVE_ENGINE_COMMON_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define VTASERVE_STATUS_CONCAT_INNER_(a, b) a##b
#define VTASERVE_STATUS_CONCAT_(a, b) VTASERVE_STATUS_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` is not OK.
#define VTASERVE_RETURN_IF_ERROR(expr)                   \
  do {                                                   \
    const ::absl::Status vtaserve_status_ = (expr);      \
    if (!vtaserve_status_.ok()) return vtaserve_status_; \
  } while (0)

// `lhs` = value of `rexpr` (a StatusOr), or returns its error.
#define VTASERVE_ASSIGN_OR_RETURN(lhs, rexpr) \
  VTASERVE_ASSIGN_OR_RETURN_IMPL_(            \
      VTASERVE_STATUS_CONCAT_(vtaserve_statusor_, __LINE__), lhs, rexpr)

#define VTASERVE_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                    \
  if (!statusor.ok()) return std::move(statusor).status();    \
  lhs = std::move(statusor).value()

namespace vtaserve {

// Rebuilds `s` with the same code and "context: " prepended to the message.
inline absl::Status AnnotateStatus(const absl::Status& s,
                                   absl::string_view context) {
  if (s.ok()) return s;
  return absl::Status(s.code(),
                      std::string(context) + ": " + std::string(s.message()));
}

}  // namespace vtaserve

#endif  // VTASERVE_ENGINE_COMMON_STATUS_MACROS_H_
