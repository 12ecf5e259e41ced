// Task names -> tasks: the built-in datasets, the seeded probes, groups, and users' JSONL files.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "eval/task.h"

namespace reprise::eval {

struct TaskOptions {
  std::filesystem::path data_dir;  // empty: find_data_dir() when a dataset is needed
  uint64_t seed = 1234;            // probes
};

struct TaskListing {
  std::string name;
  std::string output_type;
  std::vector<MetricInfo> metrics;
  std::string description;
};

// Every built-in task and group, in the order `eval --list` prints them (no data is read).
std::vector<TaskListing> task_listing();
// task_listing() as the table `eval --list` prints: a header line, one line per task (name,
// kind, metrics, description) and a note on .jsonl task files.
std::string task_listing_table();

// Splits a --task value on commas, expands groups ("bbh" = "bbh_cot_fewshot",
// "bbh_zeroshot_reprise", "probes"), normalizes probe
// names to "probe_x:D", and drops repeats. A name ending in ".jsonl" is a user task file. Throws
// Error naming an unknown task and listing the known ones.
std::vector<std::string> resolve_task_names(const std::string& spec);

// The lm-eval groups a --task value names ("bbh", "bbh_cot_fewshot"), for the group rows of
// lm-eval's results shape. reprise's own groups have none.
std::vector<TaskGroup> lm_eval_groups(const std::string& spec);

// Builds one task from a resolved name. Throws Error on unreadable or malformed data.
std::unique_ptr<Task> make_task(const std::string& name, const TaskOptions& opts);
// Every task a --task value names (resolve_task_names, then make_task), in order.
std::vector<std::unique_ptr<Task>> make_tasks(const std::string& spec, const TaskOptions& opts);

// Items a probe task holds; --limit takes the first N of them.
inline constexpr size_t kProbeItems = 250;

}  // namespace reprise::eval
