// The one place where absl::Status becomes grpc::Status: the canonical codes
// share their numeric values, so the conversion is a code cast plus the
// message. Pure functions; thread-safe.
#ifndef VTASERVE_SERVER_STATUS_CONVERSION_H_
#define VTASERVE_SERVER_STATUS_CONVERSION_H_

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace vtaserve::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace vtaserve::server

#endif  // VTASERVE_SERVER_STATUS_CONVERSION_H_
