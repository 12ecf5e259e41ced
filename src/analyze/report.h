// The analyze report: JSON (every statistic, the rankings, the validation), plots of each
// statistic against depth (PNG or SVG via cairo), and an HTML page with the plots inline.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "analyze/diagnostics.h"
#include "analyze/predict.h"

namespace reprise::analyze {

struct AnalysisReport {
  std::string model;  // file name
  std::string tasks;
  size_t limit = 0;
  int max_tokens = 0;
  Diagnostics diag;
  std::vector<Prediction> predictions;  // the primary first
  double seconds_probe = 0;             // building the probe sequences
  double seconds_prediction = 0;        // plain pass + statistics + ranking (what a scan replaces)
  double seconds_total = 0;             // everything, interventions included
  // With --against:
  std::optional<ScanMeasurements> scan;
  std::string scan_path;
  std::vector<Validation> validations;  // one per prediction
};

nlohmann::json to_json(const AnalysisReport& r);
// Plain-text summary for the terminal.
std::string summary(const AnalysisReport& r, int top = 5);
// A plot's y axis: [lo, hi] in ticks of `step` (1, 2, 2.5 or 5 times a power of ten, about four
// intervals) covering the data [data_lo, data_hi] but never leaving [floor, ceil], the values the
// statistic can take (a KL is >= 0, an agreement rate is in [0, 1]).
struct Axis {
  double lo = 0, hi = 1, step = 0.25;
};
Axis nice_axis(double data_lo, double data_hi, double floor, double ceil);

// Writes .json, .png, .svg or .html by the extension; throws Error naming the file otherwise.
void write_report(const AnalysisReport& r, const std::filesystem::path& out);

}  // namespace reprise::analyze
