// Probe sequences for the diagnostics, taken from evaluation tasks: what the model reads when the
// task is scored, so the statistics describe the same inputs a scan measures.
#pragma once

#include <string>
#include <vector>

#include "analyze/diagnostics.h"
#include "eval/registry.h"
#include "model/model.h"

namespace reprise::analyze {

struct ProbeOptions {
  std::string tasks;     // --task value (comma-separated names, groups, .jsonl files)
  size_t limit = 0;      // first N items per task (0 = all), as `scan --limit` takes them
  int max_tokens = 128;  // each sequence is cut to this many tokens
  eval::TaskOptions task_options;
};

// One sequence per item, tokenized by the model's tokenizer with the evaluation rules
// (eval/request_tokens.h):
//   passage (rolling) requests   start token + passage
//   log-likelihood requests      context + continuation; for a multiple-choice item the gold
//                                choice (found by asking the task to score a one-hot response)
//   generation / candidate        the context
// Throws Error when the model has no tokenizer or a task cannot be built.
std::vector<ProbeItem> probe_items(const Model& model, const ProbeOptions& opts);

}  // namespace reprise::analyze
