// Reports of a scan store: heatmap (PNG/SVG), HTML page, CSV of every score, text summary.
#pragma once

#include <filesystem>
#include <string>

namespace reprise::report {

// Writes by extension: .png/.svg (heatmap), .html (heatmap + top configs with CIs, skip
// controls, validation), .csv (every phase,config,path,task,item,metric,value row sorted by
// config then item; no timings, so two stores can be diffed). Throws Error naming the file.
void write_scan_report(const std::filesystem::path& store, const std::filesystem::path& out,
                       int top_k = 10);

// The plain-text summary `reprise scan` prints at the end: baseline, top configs, controls,
// validation, layer evaluations.
std::string scan_summary(const std::filesystem::path& store, int top_k = 10);

}  // namespace reprise::report
