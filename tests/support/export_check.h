// Exporting a layer path and running the export plainly must be the path, bit for bit.
#pragma once

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <memory>
#include <vector>

#include "export/export.h"
#include "support/logits.h"

namespace reprise::test {

// Exports `path` of `m` to `out` (GGUF, overwriting) and checks that the exported model's plain
// logits on `prompt` equal `m`'s along the path bit for bit. Returns the exported model.
inline std::unique_ptr<Model> expect_export_runs_path(const Model& m, const LayerPath& path,
                                                      const std::filesystem::path& out,
                                                      const std::vector<int32_t>& prompt) {
  exporter::ExportOptions o;
  o.force = true;
  exporter::export_model(m, path, out, o);
  auto e = Model::load(out);
  EXPECT_EQ(e->hparams().n_layer, path.size());
  const auto a = prompt_logits(m, path, prompt);
  const auto b = prompt_logits(*e, LayerPath::identity(path.size()), prompt);
  EXPECT_EQ(a.size(), b.size());
  if (a.size() == b.size()) {
    EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
  }
  return e;
}

}  // namespace reprise::test
