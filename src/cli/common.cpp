#include "cli/common.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "util/error.h"

namespace reprise::cli {

void ModelOptions::add_to(CLI::App& sub, bool with_path) {
  sub.add_option("-m,--model", model, "GGUF file or Hugging Face safetensors directory")
      ->required();
  if (with_path)
    sub.add_option("--path", path,
                   "layer path: '0..3,1..4', 'repeat:I:J[:K]', 'skip:I:J' (default: all layers)");
  sub.add_option("-t,--threads", threads, "threads (default: all cores)")
      ->check(CLI::Range(0, 1024));
  sub.add_option("--ctx", ctx, "context size in tokens (default: min(training context, 4096))")
      ->check(CLI::Range(0, 1 << 20));
  sub.add_option("--kv-type", kv_type, "KV cache element type: f32 or f16 (default: f32)")
      ->check(CLI::IsMember({"f32", "f16"}, CLI::ignore_case));
}

std::unique_ptr<Model> ModelOptions::load() const { return Model::load(model); }

LayerPath ModelOptions::layer_path(const Model& m) const {
  return parse_layer_path(path, m.hparams().n_layer);
}

SessionOptions ModelOptions::session_options() const {
  SessionOptions o;
  o.n_threads = threads;
  o.n_ctx = ctx;
  if (auto t = kv_type_from_name(kv_type)) o.kv_type = *t;
  else throw Error(fmt::format("--kv-type {}: expected f32 or f16", kv_type));
  return o;
}

std::vector<int32_t> parse_token_list(const std::string& s) {
  std::vector<int32_t> ids;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string tok = s.substr(start, end - start);
    while (!tok.empty() && tok.front() == ' ') tok.erase(tok.begin());
    while (!tok.empty() && tok.back() == ' ') tok.pop_back();
    int32_t v = 0;
    auto [p, ec] = std::from_chars(tok.data(), tok.data() + tok.size(), v);
    if (tok.empty() || ec != std::errc() || p != tok.data() + tok.size())
      throw Error(fmt::format("--tokens: '{}' is not a token id", tok));
    ids.push_back(v);
    start = end + 1;
  }
  return ids;
}

std::vector<int32_t> tokenize_prompt(const Model& m, const std::string& prompt, bool add_bos,
                                     bool parse_special) {
  if (!m.tokenizer())
    throw Error(fmt::format("{}: the model has no vocabulary; pass token ids with --tokens",
                            m.path()));
  EncodeOptions opts;
  opts.add_bos = add_bos;
  opts.parse_special = parse_special;
  return m.tokenizer()->encode(prompt, opts);
}

namespace {
std::vector<std::pair<int, AddCommand>>& registry() {
  static std::vector<std::pair<int, AddCommand>> r;
  return r;
}
}  // namespace

CommandRegistration::CommandRegistration(int order, AddCommand add) {
  registry().emplace_back(order, add);
}

std::vector<AddCommand> registered_commands() {
  auto r = registry();
  std::stable_sort(r.begin(), r.end(), [](auto& a, auto& b) { return a.first < b.first; });
  std::vector<AddCommand> out;
  for (auto& [order, add] : r) out.push_back(add);
  return out;
}

}  // namespace reprise::cli
