// Logging: one line per event, to stderr, in words a user can act on.
//
//   VIREO_LOG_WARN("front-end sent SET_VRING_ADDR for queue %u but the device has %u queues", q, n);
//
// Control-path logs are always compiled in and filtered at run time (VIREO_LOG=error|warn|info|debug,
// default info). Data-path logs (VIREO_DP_LOG) are compiled out unless built with -Ddp_debug=true,
// so the hot path carries no logging branch.
#pragma once

#include <cstdarg>
#include <cstdio>

namespace vireo::log {

enum class Level : int { error = 0, warn = 1, info = 2, debug = 3 };

// Current threshold; read once from VIREO_LOG on first use, settable by programs and tests.
Level threshold();
void set_threshold(Level level);

// Prints "vireo[<tag>] <level>: <message>\n" as one write. printf-style.
[[gnu::format(printf, 2, 3)]] void print(Level level, const char* fmt, ...);

// Tests: every printed line (without its newline) is also handed to `sink`, on the thread that
// logged it; the sink must be thread-safe. nullptr removes it. Installing or removing a sink
// waits for calls already inside the old one to return.
using Sink = void (*)(void* ctx, Level level, const char* line);
void set_sink(Sink sink, void* ctx);

}  // namespace vireo::log

#define VIREO_LOG_AT(lvl, ...)                                         \
  do {                                                                 \
    if (static_cast<int>(lvl) <= static_cast<int>(::vireo::log::threshold())) \
      ::vireo::log::print(lvl, __VA_ARGS__);                           \
  } while (0)
#define VIREO_LOG_ERROR(...) VIREO_LOG_AT(::vireo::log::Level::error, __VA_ARGS__)
#define VIREO_LOG_WARN(...) VIREO_LOG_AT(::vireo::log::Level::warn, __VA_ARGS__)
#define VIREO_LOG_INFO(...) VIREO_LOG_AT(::vireo::log::Level::info, __VA_ARGS__)
#define VIREO_LOG_DEBUG(...) VIREO_LOG_AT(::vireo::log::Level::debug, __VA_ARGS__)

#ifdef VIREO_DP_DEBUG
#define VIREO_DP_LOG(...) VIREO_LOG_DEBUG(__VA_ARGS__)
#else
#define VIREO_DP_LOG(...) \
  do {                    \
  } while (0)
#endif
