#include "engine/common/logging.h"

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace vtaserve {
namespace {

LogLevel LevelFromEnv() {
  const char* env = std::getenv("VTASERVE_LOG_LEVEL");
  if (env == nullptr) return LogLevel::kInfo;
  if (std::strcmp(env, "debug") == 0) return LogLevel::kDebug;
  if (std::strcmp(env, "warning") == 0) return LogLevel::kWarning;
  if (std::strcmp(env, "error") == 0) return LogLevel::kError;
  return LogLevel::kInfo;
}

std::atomic<int>& Level() {
  static std::atomic<int> level{static_cast<int>(LevelFromEnv())};
  return level;
}

}  // namespace

void SetMinLogLevel(LogLevel level) { Level() = static_cast<int>(level); }
LogLevel MinLogLevel() { return static_cast<LogLevel>(Level().load()); }

void LogMessage(LogLevel level, const char* file, int line,
                absl::string_view message) {
  static constexpr char kLetters[] = {'D', 'I', 'W', 'E'};
  const char* base = std::strrchr(file, '/');
  base = base ? base + 1 : file;
  std::string text = absl::StrFormat(
      "%s %c %s:%d] %s\n",
      absl::FormatTime("%Y-%m-%dT%H:%M:%E3S", absl::Now(), absl::UTCTimeZone()),
      kLetters[static_cast<int>(level)], base, line, message);
  std::fwrite(text.data(), 1, text.size(), stderr);
}

void CheckFailed(const char* file, int line, const char* condition,
                 absl::string_view message) {
  LogMessage(LogLevel::kError, file, line,
             absl::StrFormat("check failed: %s: %s", condition, message));
  std::abort();
}

}  // namespace vtaserve
