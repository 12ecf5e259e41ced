// The router's features and its run-time choice, both from one shared prefix run.
//
// A PrefixCache whose base path is the plain path's first L layers runs each prompt through
// those layers once; the mean over the prompt's tokens of the stream leaving layer L - 1 is the
// feature vector ([n_embd] values). A Session along any candidate path (every one of which
// follows the plain path through those L positions) given the same cache then starts its
// prefill at position L from the cached stream and KV: the prefix is never computed twice.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "engine/prefix_cache.h"
#include "engine/session.h"
#include "eval/language_model.h"
#include "eval/request_tokens.h"
#include "route/router.h"

namespace reprise::route {

class PrefixFeatures {
 public:
  // Throws Error when L is outside 1..n_layer. The cache keeps at most `max_cache_bytes` of
  // prefix runs (and always the latest one, which the prompt's own Session reuses).
  PrefixFeatures(const Model& model, int feature_layer, const SessionOptions& opts,
                 uint64_t max_cache_bytes = kDefaultCacheBytes);
  static constexpr uint64_t kDefaultCacheBytes = uint64_t{256} << 20;

  int feature_layer() const { return feature_layer_; }
  // Mean residual after layer L over `tokens` (runs the prefix, or finds it cached). A prompt
  // longer than the context is read up to the context's length. With `prefix_seconds`, adds the
  // time spent running (or finding) the prefix to it.
  std::vector<double> features(std::span<const int32_t> tokens, double* prefix_seconds = nullptr);
  // The cache to give a candidate's Session so its prefill reuses the prefix run.
  PrefixCache& cache() { return *cache_; }

 private:
  int feature_layer_;
  size_t max_tokens_;
  std::unique_ptr<PrefixCache> cache_;
};

// `--path auto:router.json` at run time: the router file checked against the model, its
// candidates parsed, and the prefix runner.
class PathRouter {
 public:
  // Throws Error naming the file when it was trained for another model (checksum), names a
  // path this model cannot run, or its feature layer does not fit the model.
  PathRouter(const Model& model, RouterFile file, const SessionOptions& opts,
             uint64_t max_cache_bytes = PrefixFeatures::kDefaultCacheBytes);

  struct Choice {
    size_t candidate = 0;
    LayerPath path;
    std::string key;
    double probability = 0;
  };
  // Runs the prefix of `prompt` (through the shared cache) and picks the candidate.
  Choice choose(std::span<const int32_t> prompt);

  // Wall time of choose() so far: running (or finding) the prefix, which the chosen path then
  // reuses rather than computes, and deciding (pooling the stream and the classifier), which is
  // the router's own cost.
  struct Timing {
    int64_t choices = 0;
    double prefix_seconds = 0, decide_seconds = 0;
  };
  const Timing& timing() const { return timing_; }
  PrefixCache& cache() { return features_.cache(); }
  const RouterFile& file() const { return file_; }

 private:
  RouterFile file_;
  std::vector<LayerPath> paths_;
  PrefixFeatures features_;
  Timing timing_;
};

// Loads `file` and checks it against `model` (PathRouter). Every error names the file:
// "FILE: not valid JSON (...)", "FILE: router file was trained for another model (...)".
std::unique_ptr<PathRouter> open_router(
    const Model& model, const std::string& file, const SessionOptions& opts,
    uint64_t max_cache_bytes = PrefixFeatures::kDefaultCacheBytes);

// The tokens the router reads for a request: its context (a passage for a rolling request) as
// `rt` tokenizes it, or its token form when it has one. Training and run time use this one rule.
std::vector<int32_t> request_prompt(const eval::Request& r, const eval::RequestTokenizer& rt);

// "auto:FILE" -> FILE; anything else -> empty.
std::string auto_router_file(const std::string& path_spec);

}  // namespace reprise::route
