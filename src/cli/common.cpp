#include "cli/common.h"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <filesystem>

#include "eval/io.h"
#include "export/mergekit.h"
#include "util/error.h"

namespace reprise::cli {

void ModelOptions::add_to(CLI::App& sub, bool with_path, ModelFlag model_flag) {
  sub.add_option("-m,--model", model, "GGUF file or Hugging Face safetensors directory")
      ->required(model_flag == ModelFlag::Required);
  if (with_path) sub.add_option("--path", path, kLayerPathHelp);
  sub.add_option("-t,--threads", threads, "threads (default: all cores)")
      ->check(CLI::Range(0, 1024));
  sub.add_option("-c,--ctx,--ctx-size", ctx,
                 "context size in tokens (default: min(training context, 4096))")
      ->check(CLI::Range(0, 1 << 20));
  sub.add_option("--kv-type", kv_type, "KV cache element type: f32 or f16 (default: f32)")
      ->check(CLI::IsMember({"f32", "f16"}, CLI::ignore_case));
  sub.add_option("--n-gpu-layers,--gpu-layers", gpu_layers,
                 "llama.cpp's -ngl: accepted and ignored (reprise runs on the CPU)");
}

std::unique_ptr<Model> ModelOptions::load() const {
  if (gpu_layers >= 0)
    fmt::print(stderr, "reprise: note: -ngl {} ignored; reprise runs on the CPU\n", gpu_layers);
  auto m = Model::load(model);
  warn_if_beyond_training_context(*m, ctx, "--ctx");
  return m;
}

void warn_if_beyond_training_context(const Model& m, int n_ctx, const char* flag) {
  const int trained = m.hparams().n_ctx_train;
  if (trained > 0 && n_ctx > trained)
    fmt::print(stderr,
               "reprise: warning: {} {} is beyond the model's training context of {} tokens; "
               "positions past it were never trained, so text and scores there are unreliable\n",
               flag, n_ctx, trained);
}

void add_sampling_options(CLI::App& sub, SamplerOptions& s) {
  sub.add_option("--temp", s.temperature, "temperature; 0 = greedy")->capture_default_str();
  sub.add_option("--top-k", s.top_k, "keep the k most likely tokens (0 = all)")
      ->capture_default_str();
  sub.add_option("--top-p", s.top_p, "nucleus probability mass (1 = off, 0 = most likely only)")
      ->capture_default_str();
  sub.add_option("--min-p", s.min_p,
                 "drop tokens less likely than this fraction of the most likely (0 = off)")
      ->capture_default_str();
  sub.add_option("--repeat-penalty", s.repeat_penalty,
                 "penalise the last --repeat-last-n tokens (1 = off)")
      ->capture_default_str();
  sub.add_option("--repeat-last-n", s.repeat_last_n, "tokens the repeat penalty looks back on")
      ->capture_default_str();
}

void check_output_file(const std::string& path, bool overwrite, const char* option) {
  namespace fs = std::filesystem;
  const fs::path p(path);
  std::error_code ec;
  const fs::file_status st = fs::status(p, ec);
  if (fs::is_directory(st))
    throw Error(fmt::format("{} {}: is a folder; give a file name", option, path));
  if (fs::exists(st) && !overwrite)
    throw Error(fmt::format("{} {}: already exists (use --force to overwrite)", option, path));
  const fs::path dir = p.has_parent_path() ? p.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec))
    throw Error(fmt::format("{} {}: the folder {} does not exist", option, path, dir.string()));
  const fs::path& probe = fs::exists(st) ? p : dir;
  if (::access(probe.c_str(), W_OK) != 0)
    throw Error(fmt::format("{} {}: cannot write {}: {}", option, path, probe.string(),
                            std::strerror(errno)));
}

std::vector<std::string> normalize_llama_flags(int argc, char** argv) {
  std::vector<std::string> args(argv, argv + argc);
  for (std::string& a : args) {
    if (a == "-ngl")
      a = "--n-gpu-layers";
    else if (a.starts_with("-ngl="))
      a = "--n-gpu-layers=" + a.substr(5);
  }
  return args;
}

void take_last_of_repeated_options(CLI::App& app) {
  for (CLI::Option* opt : app.get_options())
    if (opt->get_expected_max() == 1 && opt->get_type_size_max() <= 1)
      opt->multi_option_policy(CLI::MultiOptionPolicy::TakeLast);
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; }))
    take_last_of_repeated_options(*sub);
}

LayerPath ModelOptions::layer_path(const Model& m) const {
  return parse_layer_path(layer_path_spec(path, m.hparams().n_layer), m.hparams().n_layer);
}

std::string layer_path_spec(const std::string& spec, int n_layer) {
  // Notation never names an existing file in practice ("0..3" or "repeat:1:4" would have to be
  // file names), so a file is the unambiguous sign of a recipe.
  std::error_code ec;
  if (spec.empty() || !std::filesystem::is_regular_file(spec, ec)) return spec;
  const exporter::MergekitRecipe recipe =
      exporter::parse_mergekit_yaml(eval::read_text_file(spec), spec);
  return exporter::recipe_path(recipe, spec, n_layer).canonical();
}

SessionOptions ModelOptions::session_options() const {
  SessionOptions o;
  o.n_threads = threads;
  o.n_ctx = ctx;
  if (auto t = kv_type_from_name(kv_type))
    o.kv_type = *t;
  else
    throw Error(fmt::format("--kv-type {}: expected f32 or f16", kv_type));
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
    throw Error(
        fmt::format("{}: the model has no vocabulary; pass token ids with --tokens", m.path()));
  EncodeOptions opts;
  opts.add_bos = add_bos;
  opts.parse_special = parse_special;
  return m.tokenizer()->encode(prompt, opts);
}

}  // namespace reprise::cli
