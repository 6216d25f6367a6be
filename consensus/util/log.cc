#include "consensus/util/log.h"

#include <pthread.h>
#include <sys/time.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>

#include "consensus/util/result.h"

namespace qfs {
namespace {
std::atomic<int> g_level{static_cast<int>(LogLevel::kInfo)};
pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;

// A forked child (snapshot writer) may inherit the lock held by another thread: start it fresh.
void ResetLockInChild() {
  pthread_mutex_init(&g_mu, nullptr);
}
[[maybe_unused]] const int g_atfork = pthread_atfork(nullptr, nullptr, ResetLockInChild);

const char* LevelName(LogLevel l) {
  switch (l) {
    case LogLevel::kDebug:
      return "DEBUG";
    case LogLevel::kInfo:
      return "INFO ";
    case LogLevel::kWarn:
      return "WARN ";
    case LogLevel::kError:
      return "ERROR";
  }
  return "?";
}

void VLog(LogLevel level, const char* file, int line, const char* fmt, va_list ap) {
  char msg[4096];
  vsnprintf(msg, sizeof msg, fmt, ap);
  timeval tv;
  gettimeofday(&tv, nullptr);
  tm t;
  localtime_r(&tv.tv_sec, &t);
  const char* base = strrchr(file, '/');
  base = base ? base + 1 : file;
  char line_buf[4400];
  int n = snprintf(line_buf, sizeof line_buf, "%04d-%02d-%02d %02d:%02d:%02d.%03d %s [%s:%d] %s\n",
                   t.tm_year + 1900, t.tm_mon + 1, t.tm_mday, t.tm_hour, t.tm_min, t.tm_sec,
                   static_cast<int>(tv.tv_usec / 1000), LevelName(level), base, line, msg);
  if (n < 0) return;
  if (n >= static_cast<int>(sizeof line_buf)) n = sizeof line_buf - 1;
  pthread_mutex_lock(&g_mu);
  ssize_t ignored = write(STDERR_FILENO, line_buf, static_cast<size_t>(n));
  (void)ignored;
  pthread_mutex_unlock(&g_mu);
}
}  // namespace

void SetLogLevel(LogLevel level) {
  g_level.store(static_cast<int>(level));
}
LogLevel GetLogLevel() {
  return static_cast<LogLevel>(g_level.load(std::memory_order_relaxed));
}

bool ParseLogLevel(const char* name, LogLevel* out) {
  struct {
    const char* n;
    LogLevel l;
  } table[] = {{"debug", LogLevel::kDebug},
               {"info", LogLevel::kInfo},
               {"warn", LogLevel::kWarn},
               {"error", LogLevel::kError}};
  for (auto& e : table) {
    if (strcasecmp(name, e.n) == 0) {
      *out = e.l;
      return true;
    }
  }
  return false;
}

void LogPrintf(LogLevel level, const char* file, int line, const char* fmt, ...) {
  if (static_cast<int>(level) < g_level.load(std::memory_order_relaxed)) return;
  va_list ap;
  va_start(ap, fmt);
  VLog(level, file, line, fmt, ap);
  va_end(ap);
}

void FatalPrintf(const char* file, int line, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  VLog(LogLevel::kError, file, line, fmt, ap);
  va_end(ap);
  const char* m = "FATAL: stopping the process so that no acknowledged data can be lost\n";
  ssize_t ignored = write(STDERR_FILENO, m, strlen(m));
  (void)ignored;
  _exit(70);
}

void RawStderr(const char* msg) {
  ssize_t ignored = write(STDERR_FILENO, msg, strlen(msg));
  (void)ignored;
}

void CheckFailed(const char* file, int line, const char* cond) {
  char buf[512];
  snprintf(buf, sizeof buf, "CHECK failed at %s:%d: %s\n", file, line, cond);
  RawStderr(buf);
  abort();
}

std::string Status::ToString() const {
  static const char* names[] = {"OK",      "InvalidArgument", "NotFound",    "Corruption",
                                "IoError", "NoSpace",         "Unavailable", "Internal"};
  if (ok()) return "OK";
  return std::string(names[static_cast<int>(code_)]) + ": " + msg_;
}

Status ErrnoStatus(const std::string& what, int err) {
  std::string m = what + ": " + strerror(err);
  if (err == ENOSPC || err == EDQUOT) return NoSpace(m);
  return IoError(m);
}

}  // namespace qfs
