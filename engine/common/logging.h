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

// Logs "check failed: <condition>: <message>" at kError and aborts. Only for
// programmer errors (a broken invariant of the calling code), never for
// request data, files or devices: those get an absl::Status.
[[noreturn]] void CheckFailed(const char* file, int line, const char* condition,
                              absl::string_view message);

}  // namespace vtaserve

// VTASERVE_CHECK(cond, msg): aborts with `msg` (any string-like) when `cond`
// is false. Programmer errors only (see CheckFailed).
#define VTASERVE_CHECK(cond, msg)                                           \
  do {                                                                      \
    if (!(cond)) ::vtaserve::CheckFailed(__FILE__, __LINE__, #cond, (msg)); \
  } while (0)

#define VTASERVE_LOG(level, msg)                                              \
  do {                                                                        \
    if (::vtaserve::LogLevel::level >= ::vtaserve::MinLogLevel())             \
      ::vtaserve::LogMessage(::vtaserve::LogLevel::level, __FILE__, __LINE__, \
                             (msg));                                          \
  } while (0)

#endif  // VTASERVE_ENGINE_COMMON_LOGGING_H_
