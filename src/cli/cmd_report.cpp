// reprise report: a scan store as a heatmap, an HTML report or CSV.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "report/scan_report.h"
#include "util/error.h"

namespace reprise::cli {
namespace {

struct ReportCli {
  std::string store;
  std::vector<std::string> outs;
  int top = 10;
};

}  // namespace

void add_report(CLI::App& app, Runner& run) {
  auto o = std::make_shared<ReportCli>();
  auto* sub = app.add_subcommand("report", "heatmap, HTML report or CSV of a scan store");
  sub->add_option("store", o->store, "scan store (.db)")->required();
  sub->add_option("-o,--out", o->outs, "scan.png | scan.svg | scan.html | scores.csv (repeatable)")
      ->required();
  sub->add_option("--top", o->top, "configs in the tables");
  sub->callback([&run, o] {
    run = [o] {
      if (o->top < 1) throw Error(fmt::format("--top must be >= 1, got {}", o->top));
      for (const auto& out : o->outs) report::write_scan_report(o->store, out, o->top);
      return 0;
    };
  });
}

}  // namespace reprise::cli
