// The shared helpers in util/: strings, the stopwatch, the progress bar, the version string.
#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <sstream>
#include <thread>

#include "support/test_support.h"
#include "util/progress.h"
#include "util/stopwatch.h"
#include "util/strings.h"
#include "util/version.h"

namespace reprise {
namespace {

TEST(Strings, TrimDropsAsciiWhiteSpaceAtBothEnds) {
  EXPECT_EQ(trim("  a b \t\r\n"), "a b");
  EXPECT_EQ(trim("\v\fx"), "x");
  EXPECT_EQ(trim(" \t "), "");
  EXPECT_EQ(trim(""), "");
  EXPECT_EQ(trim("\xc2\xa0x"), "\xc2\xa0x");  // a UTF-8 no-break space is not ASCII white space
}

TEST(Strings, ToLowerChangesOnlyAsciiLetters) {
  EXPECT_EQ(to_lower("Q4_K_M"), "q4_k_m");
  EXPECT_EQ(to_lower("\xc3\x84Z"), "\xc3\x84z");
}

TEST(Strings, SplitKeepsEmptyPieces) {
  EXPECT_EQ(split("a,,b", ','), (std::vector<std::string_view>{"a", "", "b"}));
  EXPECT_EQ(split("", ','), (std::vector<std::string_view>{""}));
  EXPECT_EQ(split("a,", ','), (std::vector<std::string_view>{"a", ""}));
}

TEST(Stopwatch, MeasuresAndRestarts) {
  Stopwatch w;
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  const double lap = w.restart();
  EXPECT_GE(lap, 0.019);
  EXPECT_LT(lap, 5.0);
  EXPECT_LT(w.seconds(), lap);  // the lap started again
}

// Runs `draw` on a Progress writing to a temporary (non-terminal) file and returns its lines.
template <class F>
std::vector<std::string> progress_lines(F draw) {
  std::FILE* f = std::tmpfile();
  draw(f);
  std::fflush(f);
  std::rewind(f);
  std::vector<std::string> lines;
  char buf[512];
  while (std::fgets(buf, sizeof buf, f)) lines.emplace_back(buf);
  std::fclose(f);
  return lines;
}

TEST(Progress, LogsATenthAtATimeOutsideATerminal) {
  auto lines = progress_lines([](std::FILE* f) {
    Progress p(20, "items", f);
    for (size_t k = 1; k <= 20; ++k) p.update(k, "task");
    p.finish();
  });
  ASSERT_EQ(lines.size(), 10u);  // 2, 4, ..., 20
  EXPECT_EQ(lines[0].rfind("[##----------------------] 2/20 items", 0), 0u) << lines[0];
  EXPECT_EQ(lines[9].rfind("[########################] 20/20 items", 0), 0u) << lines[9];
  EXPECT_NE(lines[9].find("ETA 0:00  task"), std::string::npos) << lines[9];
}

TEST(Progress, LogsEveryUpdateWhenAskedAndSkippedWorkHasNoRate) {
  auto lines = progress_lines([](std::FILE* f) {
    Progress p(3, "configs", f);
    p.log_every_update();
    p.update(1, "a", 1);
    p.update(2, "b", 2);
  });
  ASSERT_EQ(lines.size(), 2u);
  // Nothing has run yet, so there is no rate to give an ETA from.
  EXPECT_NE(lines[1].find("2/3 configs  0.0 configs/s"), std::string::npos) << lines[1];
  EXPECT_NE(lines[1].find("ETA ?  b"), std::string::npos) << lines[1];
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(Progress::format_duration(0), "0:00");
  EXPECT_EQ(Progress::format_duration(62.4), "1:02");
  EXPECT_EQ(Progress::format_duration(3723), "1:02:03");
  EXPECT_EQ(Progress::format_duration(-5), "0:00");
}

TEST(Version, IsTheProjectVersionAndTheCliPrintsIt) {
  EXPECT_EQ(version(), "0.1.0");  // CMakeLists.txt project(VERSION)
  auto r = test::run_cli("--version");
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.out, "reprise 0.1.0\n");
}

TEST(Strings, ParseNumbersTakeWholeStringsOnly) {
  int i = 0;
  EXPECT_TRUE(parse_int(" 42 ", i));
  EXPECT_EQ(i, 42);
  EXPECT_FALSE(parse_int("4x", i));
  EXPECT_FALSE(parse_int("", i));
  double d = 0;
  EXPECT_TRUE(parse_double("0.25", d));
  EXPECT_EQ(d, 0.25);
  EXPECT_TRUE(parse_double("1e-3", d));
  EXPECT_EQ(d, 1e-3);
  for (const char* bad : {"auto", "0.5x", "", "nan", "inf"})
    EXPECT_FALSE(parse_double(bad, d)) << bad;
}

}  // namespace
}  // namespace reprise
