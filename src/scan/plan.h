// Which layer-path configurations a scan evaluates.
//
// Config (i, j) names the block of layers i..j-1 (half-open, like mergekit's layer_range):
//   repeat  path 0..j-1, i..N-1        (the block runs twice; RYS)
//   loop    the block runs k times in all (k >= 2)
//   skip    path 0..i-1, j..N-1        (the block is dropped; the control for repeat)
//   multi   several non-overlapping blocks of the kinds above at once (beam search, scan/beam.h)
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "engine/layer_path.h"

namespace reprise::scan {

enum class Mode { Baseline, Repeat, Loop, Skip, Multi };

std::string mode_name(Mode m);
Mode parse_mode(const std::string& name);  // throws Error listing repeat|skip|loop

struct Config {
  Mode mode = Mode::Baseline;
  int i = 0, j = 0;  // block i..j-1
  int k = 1;         // total runs of the block (repeat: 2; loop: k; skip: 0)
  float alpha = 1;   // residual weight of the passes after the first (damped repeat); 1 = plain
  // Multi: the blocks, sorted by i, pairwise disjoint, none of them Multi (see compose()); i and j
  // are then the first block's start and the last block's end.
  std::vector<Config> parts{};  // (the {} keeps Config{...} free of -Wextra warnings)

  static Config baseline() { return {}; }
  LayerPath path(int n_layer) const;
  // Stable identifier used as the store key: "baseline", "repeat:3:7", "loop:3:7:3", "skip:3:7",
  // with "@A" appended for a damped repeat or loop ("repeat:3:7@0.5"); a Multi config joins its
  // blocks' keys with '+' ("repeat:3:7+skip:20:22").
  std::string key() const;
  static Config from_key(const std::string& key);
  bool operator==(const Config&) const = default;
};

// Several blocks applied at once: walking layers 0..N-1, each block's layers run as its own
// config says (repeat/loop: k passes, the later ones weighted alpha; skip: none), the rest once.
// Multi parts are flattened and blocks sorted by start, so every composition of the same blocks
// has one canonical form; one block is returned as itself. nullopt when a block leaves the model
// or is not a repeat, loop or skip, when two blocks overlap, or when no layer would be left.
std::optional<Config> compose(int n_layer, const std::vector<Config>& blocks);

// Half-open integer range [lo, hi).
struct Range {
  int lo = 0, hi = 0;
  bool contains(int x) const { return x >= lo && x < hi; }
};

struct PlanOptions {
  std::vector<Mode> modes = {Mode::Repeat};
  std::vector<int> loops = {3};     // run counts for loop mode
  std::vector<float> alphas = {1};  // residual weights of repeat and loop configs (--alphas)
  int block_min = 1;                // smallest block j - i
  int block_max = 0;                // largest block; 0 = no limit
  std::optional<Range> i_range;     // allowed start layers
  std::optional<Range> j_range;     // allowed end layers (exclusive ends, so up to N)
};

// The plan's lists as a command line spells them: modes "repeat,skip", loop run counts "2,3",
// residual weights "0.5,1", start and end layer ranges "a:b" (half-open; "" = no limit).
struct PlanLists {
  std::string modes = "repeat", loops = "3", alphas = "1", i_range{}, j_range{};
};

// `plan` with the lists of `lists` parsed into it (block sizes untouched). Throws Error naming
// the option (--mode, --loops, --alphas, --i-range, --j-range) and the bad value.
void parse_plan_lists(const PlanLists& lists, PlanOptions& plan);

// Every config the options allow, for a model with n_layer layers, in a fixed order (mode,
// then i, then j, then k, then alpha), each layer path once (loop:i:j:2 is dropped beside
// repeat:i:j). Throws Error when the options are inconsistent with the model (ranges outside 0..N,
// min > max) naming the option.
std::vector<Config> plan_dense(int n_layer, const PlanOptions& opts);

// Coarse stage of coarse-to-fine: configs whose i and j lie on a grid of `stride` layers
// (j = N always included).
std::vector<Config> plan_coarse(int n_layer, const PlanOptions& opts, int stride);

// Fine stage: every allowed config within `radius` layers (in i and j) of one of `seeds`, of
// the same mode and k, whose layer path is not already in `done` (nor listed twice).
std::vector<Config> plan_refine(int n_layer, const PlanOptions& opts,
                                const std::vector<Config>& seeds, int radius,
                                const std::vector<Config>& done);

}  // namespace reprise::scan
