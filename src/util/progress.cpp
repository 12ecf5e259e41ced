#include "util/progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace reprise {

Progress::Progress(size_t total, std::string unit, std::FILE* out)
    : total_(std::max<size_t>(1, total)),
      unit_(std::move(unit)),
      out_(out),
      tty_(isatty(fileno(out)) != 0) {}

std::string Progress::format_duration(double seconds) {
  const long s = std::lround(std::max(0.0, seconds));
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

void Progress::update(size_t done, const std::string& label, size_t skipped) {
  const double elapsed = clock_.seconds();
  const size_t decile = done * 10 / total_;
  if (tty_) {
    // Redraw at most ten times a second, and always at the end.
    if (done < total_ && elapsed - last_draw_ < 0.1) return;
  } else if (!log_every_ && decile == last_decile_ && done < total_) {
    return;
  }
  last_draw_ = elapsed;
  last_decile_ = decile;
  const size_t worked = done - std::min(done, skipped);
  const double rate = elapsed > 0 ? worked / elapsed : 0;
  const std::string eta =
      rate > 0 ? format_duration((total_ - std::min(done, total_)) / rate) : "?";
  constexpr size_t kWidth = 24;
  const size_t filled = std::min(kWidth, done * kWidth / total_);
  const std::string bar = std::string(filled, '#') + std::string(kWidth - filled, '-');
  const std::string line =
      fmt::format("[{}] {}/{} {}  {:.1f} {}/s  elapsed {}  ETA {}  {}", bar, done, total_, unit_,
                  rate, unit_, format_duration(elapsed), eta, label);
  if (tty_) {
    fmt::print(out_, "\r{}\x1b[K", line);
  } else {
    fmt::print(out_, "{}\n", line);
  }
  std::fflush(out_);
  drawn_ = true;
}

void Progress::finish() {
  if (tty_ && drawn_) fmt::print(out_, "\n");
  drawn_ = false;
}

}  // namespace reprise
