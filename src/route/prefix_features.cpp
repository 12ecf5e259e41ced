#include "route/prefix_features.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>

#include "scan/runner.h"
#include "util/error.h"

namespace reprise::route {
namespace {

LayerPath plain_prefix(int n_layer, int feature_layer) {
  if (feature_layer < 1 || feature_layer > n_layer)
    throw Error(fmt::format("feature layer {} outside 1..{} (the model has {} layers)",
                            feature_layer, n_layer, n_layer));
  LayerPath p;
  for (int l = 0; l < feature_layer; ++l) p.layers.push_back(l);
  return p;
}

}  // namespace

PrefixFeatures::PrefixFeatures(const Model& model, int feature_layer, const SessionOptions& opts,
                               uint64_t max_cache_bytes)
    : feature_layer_(feature_layer),
      max_tokens_(static_cast<size_t>(opts.n_ctx > 0 ? opts.n_ctx : model.hparams().default_ctx())),
      cache_(std::make_unique<PrefixCache>(
          model, plain_prefix(model.hparams().n_layer, feature_layer), opts, max_cache_bytes)) {}

std::vector<double> PrefixFeatures::features(std::span<const int32_t> tokens,
                                             double* prefix_seconds) {
  if (tokens.empty()) throw Error("the router needs a prompt of at least one token");
  tokens = tokens.first(std::min(tokens.size(), max_tokens_));
  const auto t0 = std::chrono::steady_clock::now();
  const PrefixCache::Entry* e = cache_->get(tokens, 0);
  if (!e) throw Error("the prefix run of a prompt could not be computed");
  if (prefix_seconds)
    *prefix_seconds += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const std::vector<float>& x = e->residual.at(static_cast<size_t>(feature_layer_ - 1));
  const size_t n = tokens.size(), d = x.size() / n;
  std::vector<double> out(d, 0.0);
  for (size_t t = 0; t < n; ++t)
    for (size_t f = 0; f < d; ++f) out[f] += x[t * d + f];
  for (double& v : out) v /= static_cast<double>(n);
  return out;
}

PathRouter::PathRouter(const Model& model, RouterFile file, const SessionOptions& opts,
                       uint64_t max_cache_bytes)
    : file_(std::move(file)),
      features_(model, std::clamp(file_.feature_layer, 1, model.hparams().n_layer), opts,
                max_cache_bytes) {
  const int n_layer = model.hparams().n_layer;
  const std::string sha = scan::model_fingerprint(model);
  if (file_.model_sha256 != sha)
    throw Error(fmt::format(
        "router file was trained for another model (checksum {}, this model {}); retrain it "
        "with `reprise route train`",
        file_.model_sha256.substr(0, 12), sha.substr(0, 12)));
  if (file_.feature_layer > n_layer)
    throw Error(fmt::format("router file: feature layer {} but the model has {} layers",
                            file_.feature_layer, n_layer));
  if (file_.model.n_features != static_cast<size_t>(model.hparams().n_embd))
    throw Error(fmt::format("router file: {} features but the model's stream has {}",
                            file_.model.n_features, model.hparams().n_embd));
  for (size_t c = 0; c < file_.candidate_paths.size(); ++c) {
    LayerPath p = parse_layer_path(file_.candidate_paths[c], n_layer);
    const auto& l = p.layers;
    for (int s = 0; s < file_.feature_layer; ++s)
      if (s >= p.size() || l[s] != s)
        throw Error(
            fmt::format("router file: candidate '{}' departs from the plain path before "
                        "the feature layer {}",
                        file_.candidate_keys[c], file_.feature_layer));
    paths_.push_back(std::move(p));
  }
}

PathRouter::Choice PathRouter::choose(std::span<const int32_t> prompt) {
  const auto t0 = std::chrono::steady_clock::now();
  double prefix = 0;
  const auto x = features_.features(prompt, &prefix);
  const auto p = file_.model.probabilities(x.data());
  Choice c;
  c.candidate = static_cast<size_t>(std::max_element(p.begin(), p.end()) - p.begin());
  c.path = paths_[c.candidate];
  c.key = file_.candidate_keys[c.candidate];
  c.probability = p[c.candidate];
  ++timing_.choices;
  timing_.prefix_seconds += prefix;
  timing_.decide_seconds +=
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() - prefix;
  return c;
}

std::unique_ptr<PathRouter> open_router(const Model& model, const std::string& file,
                                        const SessionOptions& opts, uint64_t max_cache_bytes) {
  RouterFile f = load_router(file);  // its errors start with the file's name
  try {
    return std::make_unique<PathRouter>(model, std::move(f), opts, max_cache_bytes);
  } catch (const Error& e) {
    throw Error(fmt::format("{}: {}", file, e.what()));
  }
}

std::vector<int32_t> request_prompt(const eval::Request& r, const eval::RequestTokenizer& rt) {
  if (auto* ll = std::get_if<eval::LoglikelihoodRequest>(&r))
    return ll->continuation_tokens.empty() ? rt.context(ll->context) : ll->context_tokens;
  if (auto* roll = std::get_if<eval::RollingRequest>(&r))
    return roll->tokens.empty() ? rt.passage(roll->text) : roll->tokens;
  if (auto* g = std::get_if<eval::GenerateRequest>(&r))
    return g->context_tokens.empty() ? rt.context(g->context) : g->context_tokens;
  const auto& c = std::get<eval::CandidateRequest>(r);
  return c.candidate_tokens.empty() ? rt.context(c.context) : c.context_tokens;
}

std::string auto_router_file(const std::string& path_spec) {
  return path_spec.rfind("auto:", 0) == 0 ? path_spec.substr(5) : std::string();
}

}  // namespace reprise::route
