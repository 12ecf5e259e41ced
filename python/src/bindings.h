// What the binding files of the `reprise` Python module share: the Model wrapper and the
// functions that add each part to the module.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "engine/layer_path.h"
#include "engine/session.h"
#include "model/model.h"

namespace reprise::pyapi {

// A prompt as Python passes it: text (tokenized as `reprise run -p` does) or token ids.
using TextOrTokens = std::variant<std::string, std::vector<int32_t>>;

// reprise.Model: one loaded model (shared with the generation streams that outlive a call).
struct PyModel {
  std::shared_ptr<const Model> model;
  int threads = 0;  // 0: all cores, as the CLI's -t default

  const Tokenizer& tokenizer() const;
  // As `reprise tokenize` / `reprise run -p`: BOS when the vocabulary adds one (bos unset) or as
  // asked; special-token texts stay text unless `special`.
  std::vector<int32_t> tokenize(const std::string& text, std::optional<bool> bos,
                                bool special) const;
  std::vector<int32_t> tokens(const TextOrTokens& input) const;
  // --path notation ('' or None = all layers) against this model's layer count.
  LayerPath layer_path(const std::optional<std::string>& spec) const;
  SessionOptions session_options() const;
};

void bind_model(pybind11::module_& m);
void bind_eval(pybind11::module_& m);
void bind_store(pybind11::module_& m);

}  // namespace reprise::pyapi
