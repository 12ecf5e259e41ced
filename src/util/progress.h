// The one progress bar (eval, perplexity, analyze, synth, scan): rate and ETA on stderr. On a
// terminal it redraws one line; otherwise (logs, tests) it prints a line at every tenth of the way
// so logs stay short, or at every update when asked (a scan's configs are few and slow).
#pragma once

#include <cstddef>
#include <cstdio>
#include <string>

#include "util/stopwatch.h"

namespace reprise {

class Progress {
 public:
  // `unit` names what is counted ("items", "chunks", "configs").
  explicit Progress(size_t total, std::string unit = "items", std::FILE* out = stderr);
  // `done` units of `total` are finished; `label` names what is running (the task, the config).
  // `skipped` of the `done` cost no work (a scan's configs already in its store): they count
  // toward the bar but not toward the rate, so the ETA is not fooled by them.
  void update(size_t done, const std::string& label, size_t skipped = 0);
  // Ends the bar's line (terminal) so later output starts on a new line.
  void finish();
  // Outside a terminal, a line per update instead of per tenth.
  void log_every_update() { log_every_ = true; }

  // "1:02:03" or "2:03".
  static std::string format_duration(double seconds);

 private:
  size_t total_;
  std::string unit_;
  std::FILE* out_;
  bool tty_;
  bool log_every_ = false;
  Stopwatch clock_;
  double last_draw_ = 0;  // clock_ seconds at the last redraw
  size_t last_decile_ = 0;
  bool drawn_ = false;
};

}  // namespace reprise
