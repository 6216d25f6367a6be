// Leveled logging to stderr. Thread-safe; one line per call.
#pragma once

#include <cstdarg>

namespace qfs {

enum class LogLevel { kDebug = 0, kInfo = 1, kWarn = 2, kError = 3 };

void SetLogLevel(LogLevel level);
LogLevel GetLogLevel();
// Parses "debug", "info", "warn", "error"; returns false if unknown.
bool ParseLogLevel(const char* name, LogLevel* out);

void LogPrintf(LogLevel level, const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 4, 5)));

// Logs at error level and ends the process with exit status 70. Used for failures after which
// continuing could lose acknowledged data (a failed fsync or log write).
[[noreturn]] void FatalPrintf(const char* file, int line, const char* fmt, ...)
    __attribute__((format(printf, 3, 4)));

// Async-signal-safe, lock-free write of a message to stderr (for forked children).
void RawStderr(const char* msg);

}  // namespace qfs

#define QLOG_DEBUG(...)                                                           \
  do {                                                                            \
    if (::qfs::GetLogLevel() <= ::qfs::LogLevel::kDebug)                          \
      ::qfs::LogPrintf(::qfs::LogLevel::kDebug, __FILE__, __LINE__, __VA_ARGS__); \
  } while (0)
#define QLOG_INFO(...) ::qfs::LogPrintf(::qfs::LogLevel::kInfo, __FILE__, __LINE__, __VA_ARGS__)
#define QLOG_WARN(...) ::qfs::LogPrintf(::qfs::LogLevel::kWarn, __FILE__, __LINE__, __VA_ARGS__)
#define QLOG_ERROR(...) ::qfs::LogPrintf(::qfs::LogLevel::kError, __FILE__, __LINE__, __VA_ARGS__)
#define QFS_FATAL(...) ::qfs::FatalPrintf(__FILE__, __LINE__, __VA_ARGS__)
