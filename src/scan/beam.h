// Multi-block beam search (scan --strategy beam): paths that compose several blocks, grown one
// block per round from the best paths scored so far, with a surrogate model deciding which of the
// many candidates are worth scoring.
//
// Round 0 is the single-block grid (the scan's "search" phase). Round d takes the `width` best
// configs scored so far (by the surrogate's target below), adds to each one more block of the
// grid's block set (composition: scan::compose, canonical by sorted blocks), drops invalid paths
// and paths already scored or listed (by canonical layer path), and scores only `score` of them:
// the surrogate's top predictions while its held-out Spearman rho (k-fold over every scored config)
// is at least `min_rho`, otherwise the top of the seed ranking (the sum of its blocks' own targets,
// which assumes the blocks add up), and says which it did.
//
// Target of a config: per task, the mean of (config - baseline) over the search items in the
// task's primary metric, sign-adjusted (positive = better) and divided by the standard deviation
// of the baseline's item scores (1 when it has none); then the mean over the tasks. With one task
// it orders configs as their delta does (the `combined` of scan/analysis.h up to the baseline's
// sqrt(n)).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "scan/plan.h"

namespace reprise::scan {

class Store;

struct BeamOptions {
  int width = 4;         // W: configs expanded per round
  int depth = 2;         // D: rounds (a path has at most D + 1 blocks)
  int score = 8;         // K: candidates scored per round
  double min_rho = 0.6;  // the surrogate is trusted at or above this held-out rho
  // "ridge", "knn", or "auto": each round, whichever of the two has the higher held-out rho.
  std::string surrogate = "auto";
  int folds = 5;  // k of the k-fold held-out rho
};

// Throws Error naming the option (--beam, --depth, --beam-score, --surrogate-min-rho,
// --surrogate) for values out of range.
void check_beam_options(const BeamOptions& o);

// Features of a path for the surrogate, for a model of n_layer layers: per layer its
// alpha-weighted visit count minus 1 (0 = plain, 1 = one extra full pass, -1 = skipped), per
// layer whether it is skipped, and the path's length over n_layer minus 1. 2 * n_layer + 1 values.
std::vector<double> path_features(const LayerPath& path, int n_layer);

// A regression of targets on features: "ridge" (ridge regression on the features, centred, with
// an unpenalised intercept, lambda 1) or "knn" (mean target of the 5 nearest rows, Euclidean).
class Surrogate {
 public:
  // Throws Error for an unknown kind.
  explicit Surrogate(std::string kind);
  void fit(const std::vector<std::vector<double>>& x, const std::vector<double>& y);
  double predict(const std::vector<double>& x) const;

 private:
  std::string kind_;
  std::vector<std::vector<double>> x_;  // knn: the training rows
  std::vector<double> y_;               // knn: their targets
  std::vector<double> mean_x_, beta_;   // ridge
  double mean_y_ = 0;
};

// Held-out Spearman rho of a surrogate of `kind`: each of `folds` folds (rows assigned by a
// shuffle seeded with `seed`) is predicted by a model fitted on the others, and the predictions
// of all rows are correlated with the targets. NaN with fewer than 2 * folds rows.
double held_out_rho(const std::string& kind, const std::vector<std::vector<double>>& x,
                    const std::vector<double>& y, int folds, uint64_t seed);

// Candidates of one round: each of `beam` composed with each of `blocks` (scan::compose), minus
// invalid compositions, paths in `seen` (canonical layer paths; the new ones are added), and
// compositions whose block count exceeds max_blocks. In beam order, then block order.
std::vector<Config> expand_beam(int n_layer, const std::vector<Config>& beam,
                                const std::vector<Config>& blocks, int max_blocks,
                                std::vector<std::string>& seen);

// One round's choice among the candidates.
struct BeamChoice {
  std::vector<Config> chosen;         // at most K, best predicted first
  std::vector<double> predicted;      // what the ranking that chose them predicted (parallel)
  double rho_ridge = 0, rho_knn = 0;  // held-out rho of both surrogates on the scored configs
  std::string model;                  // the surrogate in use: "ridge" or "knn"
  double rho = 0;                     // its held-out rho
  bool trusted = false;               // rho >= min_rho: the surrogate ranked the candidates
};

// Ranks `candidates` with a surrogate fitted on the scored configs (`scored`, their `targets`)
// if its held-out rho reaches o.min_rho, else by the sum of their blocks' targets (blocks
// without a target in `scored` count 0); ties keep candidate order. Deterministic for a seed.
BeamChoice choose_candidates(int n_layer, const std::vector<Config>& scored,
                             const std::vector<double>& targets,
                             const std::vector<Config>& candidates, const BeamOptions& o,
                             uint64_t seed);

// Targets (above) of configs stored as (key, phase), each against the baseline's scores in the
// phase "search" on the same items. Items either side scored NaN are left out.
std::vector<double> beam_targets(const Store& store,
                                 const std::vector<std::pair<std::string, std::string>>& configs);

// The beam search's record (the store's meta "beam") as text for the scan summary: per round the
// surrogate's rho, whether it was trusted, the configs scored and how their measured targets
// ranked against the predictions. Empty when the store has no beam search.
std::string describe_beam(const Store& store);

}  // namespace reprise::scan
