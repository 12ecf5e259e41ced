// Router files for tests: one trained from a tiny real scan of the bundled model (made once per
// test process), and hand-made ones whose choices are known in advance.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "model/model.h"
#include "route/prefix_features.h"
#include "route/router.h"
#include "scan/runner.h"
#include "support/test_support.h"

namespace reprise::test {

// A scan of 20 configs x 12 BoolQ items with 3 validated configs (seconds on the bundled model),
// made once per test process.
inline const std::filesystem::path& route_scan_store() {
  static const std::filesystem::path store = [] {
    const std::filesystem::path store = scratch("route-scan.db");
    std::filesystem::remove(store);
    auto s = run_cli("scan " + default_model_arg() + " --task boolq --limit 12 --validate 3 -o '" +
                     store.string() + "'");
    EXPECT_EQ(s.exit_code, 0) << s.err;
    return store;
  }();
  return store;
}

// `reprise route train` on route_scan_store(), made once per test process.
inline const std::filesystem::path& trained_router() {
  static const std::filesystem::path router = [] {
    const std::filesystem::path store = route_scan_store(), out = scratch("router.json");
    std::filesystem::remove(out);
    auto r = run_cli("route train '" + store.string() + "' " + default_model_arg() + " -o '" +
                     out.string() + "' --paths 3 --folds 3");
    EXPECT_EQ(r.exit_code, 0) << r.err;
    EXPECT_CONTAINS(r.out, "cross-validated accuracy");
    EXPECT_CONTAINS(r.out, "boolq");
    return out;
  }();
  return router;
}

// A router for `m` over candidates (key, path notation), the plain path first, read after
// `feature_layer` layers, with zero weights and these biases: it picks the candidate of the
// largest bias for every prompt.
inline route::RouterFile constant_router(const Model& m, int feature_layer,
                                         const std::vector<std::string>& keys,
                                         const std::vector<std::string>& paths,
                                         const std::vector<double>& bias) {
  route::RouterFile f;
  f.model_sha256 = scan::model_fingerprint(m);
  f.feature_layer = feature_layer;
  f.candidate_keys = keys;
  f.candidate_paths = paths;
  const size_t d = static_cast<size_t>(m.hparams().n_embd);
  f.model.n_classes = keys.size();
  f.model.n_features = d;
  f.model.mean.assign(d, 0.0);
  f.model.scale.assign(d, 1.0);
  f.model.weights.assign(keys.size() * d, 0.0);
  f.model.bias = bias;
  return f;
}

// A router over two candidates, read after `feature_layer`, that sends the prompt `to_second`
// to candidate 1 and `to_first` to candidate 0: one weight row along the difference of their
// features, centred between them, so the logit of candidate 1 exceeds candidate 0's by
// +|fa - fb|^2 / 2 for `to_second` and falls short by as much for `to_first`.
inline route::RouterFile two_prompt_router(const Model& m, int feature_layer,
                                           const std::vector<std::string>& keys,
                                           const std::vector<std::string>& paths,
                                           const std::vector<int32_t>& to_second,
                                           const std::vector<int32_t>& to_first) {
  SessionOptions so;
  so.n_threads = 1;
  route::PrefixFeatures pf(m, feature_layer, so);
  const auto fa = pf.features(to_second), fb = pf.features(to_first);
  route::RouterFile f = constant_router(m, feature_layer, keys, paths, {0, 0});
  const size_t d = fa.size();
  for (size_t k = 0; k < d; ++k) {
    f.model.mean[k] = (fa[k] + fb[k]) / 2;
    f.model.weights[d + k] = fa[k] - fb[k];
  }
  return f;
}

// Writes `f` as a router file named `name` in the scratch directory; returns its path.
inline std::filesystem::path write_router(const route::RouterFile& f, const std::string& name) {
  const std::filesystem::path p = scratch(name);
  std::ofstream(p) << route::to_json(f).dump();
  return p;
}

}  // namespace reprise::test
