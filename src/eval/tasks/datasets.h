// The bundled datasets (data/, see data/README.md) turned into tasks. Each loader reads its files
// from the data directory and throws Error naming the file (and line) on malformed input.
// Item ids are "<task>/<index in the dataset file>", so they are stable across runs.
#pragma once

#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "eval/task.h"
#include "eval/tasks/bbh.h"  // BIG-Bench Hard

namespace reprise::eval {

std::unique_ptr<Task> load_arc(const std::filesystem::path& data_dir, bool challenge);
std::unique_ptr<Task> load_boolq(const std::filesystem::path& data_dir);
std::unique_ptr<Task> load_winogrande(const std::filesystem::path& data_dir);
// lm-eval's gsm8k (fewshot: five examples per item from gsm8k/train.jsonl, drawn as lm-eval
// draws them; an Error names the file when it is missing) or gsm8k_zeroshot (none).
std::unique_ptr<Task> load_gsm8k(const std::filesystem::path& data_dir, bool fewshot = false);
std::unique_ptr<Task> load_eq_bench(const std::filesystem::path& data_dir);
std::unique_ptr<Task> load_tinystories(const std::filesystem::path& data_dir);
std::unique_ptr<Task> load_wikitext2(const std::filesystem::path& data_dir);

// Metric lists, for `eval --list` without loading any data.
std::vector<MetricInfo> gsm8k_metrics();

}  // namespace reprise::eval
