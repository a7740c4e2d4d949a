// Minimal leveled logging to stderr (Debian's Abseil 20220623 has no absl/log).
// Thread-safe: each message is written with a single fwrite.
#ifndef VTASERVE_ENGINE_COMMON_LOGGING_H_
#define VTASERVE_ENGINE_COMMON_LOGGING_H_

#include "absl/strings/string_view.h"

namespace vtaserve {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarning = 2, kError = 3 };

// Messages below this level are dropped. Default: kInfo (VTASERVE_LOG_LEVEL
// env var: debug|info|warning|error overrides it at first use).
void SetMinLogLevel(LogLevel level);
LogLevel MinLogLevel();

// Writes "<time> <L> <file>:<line>] <message>\n" to stderr.
void LogMessage(LogLevel level, const char* file, int line,
                absl::string_view message);

}  // namespace vtaserve

#define VTASERVE_LOG(level, msg)                                              \
  do {                                                                        \
    if (::vtaserve::LogLevel::level >= ::vtaserve::MinLogLevel())             \
      ::vtaserve::LogMessage(::vtaserve::LogLevel::level, __FILE__, __LINE__, \
                             (msg));                                          \
  } while (0)

#endif  // VTASERVE_ENGINE_COMMON_LOGGING_H_
