#include "base/log.hpp"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unistd.h>

namespace vireo::log {
namespace {

Level from_env() {
  const char* v = std::getenv("VIREO_LOG");
  if (v == nullptr) return Level::info;
  if (std::strcmp(v, "error") == 0) return Level::error;
  if (std::strcmp(v, "warn") == 0) return Level::warn;
  if (std::strcmp(v, "debug") == 0) return Level::debug;
  return Level::info;
}

std::atomic<int>& level_storage() {
  static std::atomic<int> level{static_cast<int>(from_env())};
  return level;
}

const char* name(Level level) {
  switch (level) {
    case Level::error: return "error";
    case Level::warn: return "warn";
    case Level::info: return "info";
    case Level::debug: return "debug";
  }
  return "?";
}

struct SinkSlot {
  std::mutex mu;  // control-path logging only: a lock per line is fine
  Sink sink = nullptr;
  void* ctx = nullptr;
};
SinkSlot& sink_slot() {
  static SinkSlot slot;
  return slot;
}

}  // namespace

void set_sink(Sink sink, void* ctx) {
  SinkSlot& s = sink_slot();
  std::lock_guard lock(s.mu);
  s.sink = sink;
  s.ctx = ctx;
}

Level threshold() { return static_cast<Level>(level_storage().load(std::memory_order_relaxed)); }

void set_threshold(Level level) {
  level_storage().store(static_cast<int>(level), std::memory_order_relaxed);
}

void print(Level level, const char* fmt, ...) {
  char line[1024];
  int n = std::snprintf(line, sizeof line, "vireo[%d] %s: ", static_cast<int>(getpid()), name(level));
  if (n < 0) return;
  va_list ap;
  va_start(ap, fmt);
  int m = std::vsnprintf(line + n, sizeof line - static_cast<size_t>(n) - 1, fmt, ap);
  va_end(ap);
  if (m < 0) return;
  size_t len = std::strlen(line);
  {
    SinkSlot& s = sink_slot();
    std::lock_guard lock(s.mu);
    if (s.sink != nullptr) s.sink(s.ctx, level, line);
  }
  line[len++] = '\n';
  // One write(2) per line, so lines from several threads do not interleave.
  [[maybe_unused]] ssize_t w = ::write(STDERR_FILENO, line, len);
}

}  // namespace vireo::log
