// reprise export: write a model along a layer path as GGUF, Hugging Face safetensors or a
// mergekit recipe.
#include <fmt/format.h>

#include <charconv>
#include <csignal>

#include "cli/commands.h"
#include "cli/common.h"
#include "export/export.h"
#include "util/error.h"

namespace reprise::cli {
namespace {

struct ExportCliOptions {
  ModelOptions model;
  std::string output;
  std::string format;
  std::string type = "keep";
  std::string max_shard = "5GB";
  std::string name;
  std::string mergekit_model;
  bool force = false;
  bool alias = false;
};

// "5GB", "500MB", "123456" (decimal units, as transformers' max_shard_size).
uint64_t parse_size(const std::string& s) {
  uint64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  std::string unit(p, s.data() + s.size());
  for (char& c : unit) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  uint64_t mult = 0;
  if (unit.empty() || unit == "B")
    mult = 1;
  else if (unit == "KB")
    mult = 1000;
  else if (unit == "MB")
    mult = 1000'000;
  else if (unit == "GB")
    mult = 1000'000'000;
  if (ec != std::errc() || p == s.data() || mult == 0 || v == 0 || v > UINT64_MAX / mult)
    throw Error(fmt::format("--max-shard-size: '{}' is not a size such as 5GB or 500MB", s));
  return v * mult;
}

std::string human_bytes(uint64_t n) {
  if (n >= 1000'000'000) return fmt::format("{:.2f} GB", n / 1e9);
  if (n >= 1000'000) return fmt::format("{:.2f} MB", n / 1e6);
  if (n >= 1000) return fmt::format("{:.1f} kB", n / 1e3);
  return fmt::format("{} bytes", n);
}

int run_export(const ExportCliOptions& o) {
  // A file-size limit (ulimit -f) must end in a clean error with the temporary file removed,
  // not in the signal's default action, which kills the process mid-write.
  std::signal(SIGXFSZ, SIG_IGN);

  exporter::ExportOptions e;
  if (!o.format.empty()) {
    e.format = exporter::parse_format(o.format);
  } else if (auto f = exporter::format_from_output(o.output)) {
    e.format = *f;
  } else {
    throw Error(
        fmt::format("-o {}: cannot tell the format from the name; pass --format gguf, hf, "
                    "mergekit or exl3",
                    o.output));
  }
  e.type = exporter::parse_type_spec(o.type);
  e.force = o.force;
  e.alias = o.alias;
  e.max_shard_bytes = parse_size(o.max_shard);
  e.name = o.name;
  e.model_ref = o.mergekit_model;
  e.n_threads = o.model.threads;

  auto m = o.model.load();
  const LayerPath path = o.model.layer_path(*m);
  const auto res = exporter::export_model(*m, path, o.output, e);

  static constexpr const char* kFormatNames[] = {"GGUF", "HF safetensors", "mergekit recipe",
                                                 "ExLlamaV3 layer_map"};
  fmt::print(stderr, "path: {} ({} blocks from {} layers)\n", path.canonical(), path.size(),
             m->hparams().n_layer);
  for (const auto& note : res.notes) fmt::print(stderr, "note: {}\n", note);
  if (e.format == exporter::Format::Mergekit || e.format == exporter::Format::Exl3)
    fmt::print(stderr, "wrote {} ({})\n", o.output, kFormatNames[static_cast<int>(e.format)]);
  else
    fmt::print(stderr, "wrote {} ({}, {} tensors, {} of tensor data)\n", o.output,
               kFormatNames[static_cast<int>(e.format)], res.n_tensors,
               human_bytes(res.tensor_bytes));
  return 0;
}

}  // namespace

void add_export(CLI::App& app, Runner& run) {
  auto o = std::make_shared<ExportCliOptions>();
  auto* sub = app.add_subcommand(
      "export",
      "write the model along a layer path as GGUF, HF safetensors, a mergekit recipe or an "
      "ExLlamaV3 layer_map");
  o->model.add_to(*sub);
  sub->add_option("-o,--output", o->output,
                  "output: a .gguf file, an HF directory, a .yaml recipe or a layer_map text file")
      ->required();
  sub->add_option("--format", o->format,
                  "gguf, hf, mergekit or exl3 (default: from the output name: .gguf, .yaml)");
  sub->add_option("--type", o->type,
                  "tensor type: keep (default), F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, "
                  "IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS, Q4_K_M; 1-D tensors stay F32");
  sub->add_flag("--force", o->force, "replace an existing output");
  sub->add_flag("--alias", o->alias,
                "GGUF: repeated blocks point at one copy of their data (llama.cpp refuses such "
                "files; see docs/export.md)");
  sub->add_option("--max-shard-size", o->max_shard,
                  "HF: largest safetensors shard, e.g. 5GB (default), 500MB");
  sub->add_option("--name", o->name, "GGUF general.name (default: source name and path)");
  sub->add_option("--mergekit-model", o->mergekit_model,
                  "mergekit: the `model:` to name (default: the -m path)");
  sub->callback([&run, o] { run = [o] { return run_export(*o); }; });
}

}  // namespace reprise::cli
