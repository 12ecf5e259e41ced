// What `reprise eval` scores: a model along one layer path, or, for `--path auto:ROUTER.json`,
// along the path a router picks for each item.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "eval/session_lm.h"
#include "route/prefix_features.h"
#include "route/routed_lm.h"

namespace reprise::route {

class ScoredModel {
 public:
  // `path_spec` as --path gives it: auto:ROUTER.json routes each item (the router is loaded and
  // checked against `model` here); anything else runs the path `parse_path` returns (called only
  // then). `model` must outlive this object.
  ScoredModel(const Model& model, const std::string& path_spec,
              const std::function<LayerPath()>& parse_path, const eval::SessionLMOptions& opts);

  // The model to score: the router's when routed, else the plain one.
  eval::LanguageModel& scored();
  // The session-backed model underneath (its token counts, context size, prompt format).
  eval::SessionLM& session_lm();
  bool routed() const { return routed_ != nullptr; }

  // The path the session starts on (when routed: the router's first candidate).
  const LayerPath& path() const { return path_; }
  // "auto:FILE" when routed, else the path's canonical text.
  const std::string& path_label() const { return label_; }
  // The path's layers as JSON, null when routed (each item may take another path).
  nlohmann::json path_layers() const;
  // The path an item (by its prompt, eval::ItemRecord::prompt) ran along, as the samples log
  // records it: "auto:KEY" with the router's chosen candidate, else the canonical path.
  std::string path_of(const std::string& prompt) const;
  // Requests routed to each candidate key (empty when not routed).
  std::map<std::string, int64_t> route_counts() const;

 private:
  std::unique_ptr<PathRouter> router_;
  std::unique_ptr<RoutedLM> routed_;
  std::unique_ptr<eval::SessionLM> plain_;
  LayerPath path_;
  std::string label_;
};

}  // namespace reprise::route
