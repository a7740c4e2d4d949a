// The real vtaserve binary as a child process on 127.0.0.1: started with
// posix_spawn, its stdout and stderr in a log file, its ports read back from
// the "serving gRPC on port N, metrics on port M" line, its resident set
// read from /proc/PID/status. The destructor kills a child still running.
#ifndef VTASERVE_TESTS_INTEGRATION_SERVER_PROCESS_H_
#define VTASERVE_TESTS_INTEGRATION_SERVER_PROCESS_H_

#include <sys/types.h>

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace vtaserve::testing {

// The vtaserve binary under test: $VTASERVE_SERVER_BINARY, else the path
// CMake compiled in.
std::string ServerBinary();

class ServerProcess {
 public:
  // Runs `binary` with `args`, output to `log`, in this process's
  // environment plus `env` ("NAME=value" entries). Errors: Internal when
  // the spawn fails.
  static absl::StatusOr<std::unique_ptr<ServerProcess>> Start(
      const std::string& binary, const std::vector<std::string>& args,
      const std::filesystem::path& log,
      const std::vector<std::string>& env = {});
  ~ServerProcess();

  // Waits for the ports line. Unavailable with the log when the child exits
  // first, DeadlineExceeded after `timeout`.
  absl::Status AwaitServing(absl::Duration timeout);
  // Waits for the exit; the exit code (128 + signal when killed).
  // DeadlineExceeded after `timeout` (the child keeps running).
  absl::StatusOr<int> Wait(absl::Duration timeout);
  // Whether the child has exited (reaps it).
  bool Exited();
  void Signal(int signal);

  // VmRSS in KiB; NotFound once the child is gone.
  absl::StatusOr<int64_t> RssKib() const { return StatusField("VmRSS:"); }
  // Threads of the child; NotFound once it is gone.
  absl::StatusOr<int64_t> Threads() const { return StatusField("Threads:"); }
  // The number after `field` in /proc/PID/status.
  absl::StatusOr<int64_t> StatusField(const std::string& field) const;
  std::string Log() const;

  pid_t pid() const { return pid_; }
  int grpc_port() const { return grpc_port_; }
  int metrics_port() const { return metrics_port_; }

 private:
  ServerProcess(pid_t pid, std::filesystem::path log)
      : pid_(pid), log_(std::move(log)) {}

  const pid_t pid_;
  const std::filesystem::path log_;
  int grpc_port_ = -1;
  int metrics_port_ = -1;
  bool exited_ = false;
  int exit_code_ = -1;
};

}  // namespace vtaserve::testing

#endif  // VTASERVE_TESTS_INTEGRATION_SERVER_PROCESS_H_
