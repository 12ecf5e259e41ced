// A progress bar with rate and ETA on stderr. On a terminal it redraws one line; otherwise
// (logs, tests) it prints a line at every tenth of the way so logs stay short.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdio>
#include <string>

namespace reprise::eval {

class Progress {
 public:
  // `unit` names what is counted ("items", "chunks").
  explicit Progress(size_t total, std::string unit = "items", std::FILE* out = stderr);
  // `done` items of `total` are finished; `label` names what is running (the task).
  void update(size_t done, const std::string& label);
  // Ends the bar's line (terminal) so later output starts on a new line.
  void finish();

  // "1:02:03" or "2:03".
  static std::string format_duration(double seconds);

 private:
  size_t total_;
  std::string unit_;
  std::FILE* out_;
  bool tty_;
  std::chrono::steady_clock::time_point start_, last_draw_;
  size_t last_decile_ = 0;
  bool drawn_ = false;
};

}  // namespace reprise::eval
