#include "route/scored_model.h"

namespace reprise::route {

ScoredModel::ScoredModel(const Model& model, const std::string& path_spec,
                         const std::function<LayerPath()>& parse_path,
                         const eval::SessionLMOptions& opts) {
  if (const std::string file = auto_router_file(path_spec); !file.empty()) {
    router_ = open_router(model, file, opts.session);
    routed_ = std::make_unique<RoutedLM>(model, *router_, opts);
    label_ = path_spec;
  } else {
    plain_ = std::make_unique<eval::SessionLM>(model, parse_path(), opts);
  }
  path_ = session_lm().session().path();
  if (!routed_) label_ = path_.canonical();
}

eval::LanguageModel& ScoredModel::scored() {
  if (routed_) return *routed_;
  return *plain_;
}

eval::SessionLM& ScoredModel::session_lm() {
  return routed_ ? routed_->inner() : *plain_;
}

nlohmann::json ScoredModel::path_layers() const {
  if (routed_) return nullptr;
  return path_.layers;
}

std::string ScoredModel::path_of(const std::string& prompt) const {
  return routed_ ? "auto:" + routed_->chosen(prompt) : label_;
}

std::map<std::string, int64_t> ScoredModel::route_counts() const {
  return routed_ ? routed_->counts() : std::map<std::string, int64_t>{};
}

}  // namespace reprise::route
