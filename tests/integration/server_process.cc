#include "tests/integration/server_process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

extern char** environ;

namespace vtaserve::testing {

std::string ServerBinary() {
  if (const char* env = std::getenv("VTASERVE_SERVER_BINARY");
      env != nullptr && *env != '\0') {
    return env;
  }
  return VTASERVE_SERVER_BINARY_PATH;
}

absl::StatusOr<std::unique_ptr<ServerProcess>> ServerProcess::Start(
    const std::string& binary, const std::vector<std::string>& args,
    const std::filesystem::path& log, const std::vector<std::string>& env) {
  const int fd =
      ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return absl::InternalError(
        absl::StrCat("open ", log.string(), ": ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fd, STDERR_FILENO);
  std::vector<std::string> argv_storage = {binary};
  argv_storage.insert(argv_storage.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (std::string& a : argv_storage) argv.push_back(a.data());
  argv.push_back(nullptr);
  std::vector<std::string> env_storage = env;
  std::vector<char*> envp;
  for (std::string& e : env_storage) envp.push_back(e.data());
  for (char** e = environ; *e != nullptr; ++e) envp.push_back(*e);
  envp.push_back(nullptr);
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, binary.c_str(), &actions, nullptr,
                             argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(fd);
  if (rc != 0) {
    return absl::InternalError(
        absl::StrCat("spawn ", binary, ": ", std::strerror(rc)));
  }
  return std::unique_ptr<ServerProcess>(new ServerProcess(pid, log));
}

ServerProcess::~ServerProcess() {
  if (!Exited()) {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
  }
}

std::string ServerProcess::Log() const {
  std::ifstream in(log_);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

bool ServerProcess::Exited() {
  if (exited_) return true;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    exited_ = true;
    exit_code_ =
        WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  }
  return exited_;
}

absl::Status ServerProcess::AwaitServing(absl::Duration timeout) {
  static const std::regex kPorts(
      R"(serving gRPC on port (\d+), metrics on port (-?\d+))");
  const absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    const std::string log = Log();
    std::smatch m;
    if (std::regex_search(log, m, kPorts)) {
      if (!absl::SimpleAtoi(m[1].str(), &grpc_port_) ||
          !absl::SimpleAtoi(m[2].str(), &metrics_port_)) {
        return absl::InternalError("unparsable ports line");
      }
      return absl::OkStatus();
    }
    if (Exited()) {
      return absl::UnavailableError(
          absl::StrCat("exited with ", exit_code_, " before serving: ", log));
    }
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::DeadlineExceededError(absl::StrCat(
      "not serving after ", absl::FormatDuration(timeout), ": ", Log()));
}

absl::StatusOr<int> ServerProcess::Wait(absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  while (!Exited()) {
    if (absl::Now() >= deadline) {
      return absl::DeadlineExceededError(
          absl::StrCat("still running after ", absl::FormatDuration(timeout)));
    }
    absl::SleepFor(absl::Milliseconds(5));
  }
  return exit_code_;
}

void ServerProcess::Signal(int signal) {
  if (!exited_) ::kill(pid_, signal);
}

absl::StatusOr<int64_t> ServerProcess::StatusField(
    const std::string& field) const {
  std::ifstream in(absl::StrCat("/proc/", pid_, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field, 0) != 0) continue;
    std::istringstream fields(line.substr(field.size()));
    int64_t value = -1;
    fields >> value;
    if (value >= 0) return value;
  }
  return absl::NotFoundError(
      absl::StrCat("no ", field, " in /proc/", pid_, "/status"));
}

}  // namespace vtaserve::testing
