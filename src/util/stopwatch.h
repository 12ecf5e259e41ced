// Wall-clock time since a start point, in seconds: the one timer every command and module uses
// for the durations it reports (load time, tokens per second, a config's seconds).
#pragma once

#include <chrono>

namespace reprise {

class Stopwatch {
 public:
  using Clock = std::chrono::steady_clock;  // monotonic: immune to clock changes

  Stopwatch() : start_(Clock::now()) {}
  // Seconds since construction or the last restart().
  double seconds() const { return std::chrono::duration<double>(Clock::now() - start_).count(); }
  // Returns seconds() and starts again from now (a lap).
  double restart() {
    const auto now = Clock::now();
    const double s = std::chrono::duration<double>(now - start_).count();
    start_ = now;
    return s;
  }

 private:
  Clock::time_point start_;
};

}  // namespace reprise
