// Users' own tasks: a JSONL file, one item per line, all lines of one kind (docs/evaluation.md):
//
//   multiple choice   {"context": "...", "choices": [" a", " b"], "gold": 0}
//   partial scoring   {"contexts": ["... a", "... b"], "continuation": " ...", "gold": 1}
//   generation        {"context": "...", "target": "42", "stop": ["\n"], "max_tokens": 32,
//                      "regex": "answer is (\\d+)"}
//   digit             {"context": "... is", "digit": 7}
//   passage           {"text": "..."}
//
// Optional on every line: "id" (string or integer; default "<file stem>/<line>"). Choices and
// continuations are used exactly as written (include the leading space yourself).
#pragma once

#include <filesystem>
#include <memory>

#include "eval/task.h"

namespace reprise::eval {

// The task is named after the file's stem. Throws Error "file:line: ..." on malformed lines.
std::unique_ptr<Task> load_jsonl_task(const std::filesystem::path& file);

}  // namespace reprise::eval
