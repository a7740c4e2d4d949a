#include "server/status_conversion.h"

#include "gtest/gtest.h"

namespace vtaserve::server {
namespace {

TEST(StatusConversionTest, OkIsOk) {
  EXPECT_TRUE(ToGrpcStatus(absl::OkStatus()).ok());
}

TEST(StatusConversionTest, KeepsCodeAndMessage) {
  const struct {
    absl::Status in;
    grpc::StatusCode want;
  } cases[] = {
      {absl::InvalidArgumentError("bad shape"),
       grpc::StatusCode::INVALID_ARGUMENT},
      {absl::NotFoundError("no model"), grpc::StatusCode::NOT_FOUND},
      {absl::ResourceExhaustedError("queue"),
       grpc::StatusCode::RESOURCE_EXHAUSTED},
      {absl::DeadlineExceededError("late"),
       grpc::StatusCode::DEADLINE_EXCEEDED},
      {absl::UnavailableError("draining"), grpc::StatusCode::UNAVAILABLE},
      {absl::FailedPreconditionError("x"),
       grpc::StatusCode::FAILED_PRECONDITION},
      {absl::CancelledError("x"), grpc::StatusCode::CANCELLED},
      {absl::UnimplementedError("x"), grpc::StatusCode::UNIMPLEMENTED},
      {absl::InternalError("x"), grpc::StatusCode::INTERNAL},
      {absl::UnauthenticatedError("x"), grpc::StatusCode::UNAUTHENTICATED},
  };
  for (const auto& c : cases) {
    const grpc::Status g = ToGrpcStatus(c.in);
    EXPECT_EQ(g.error_code(), c.want) << c.in;
    EXPECT_EQ(g.error_message(), std::string(c.in.message()));
  }
}

}  // namespace
}  // namespace vtaserve::server
