// reprise synth: write a random-weight model at the real shapes of a published checkpoint.
#include <fmt/format.h>

#include "cli/commands.h"
#include "cli/common.h"
#include "synth/synth.h"
#include "util/error.h"
#include "util/progress.h"
#include "util/stopwatch.h"

namespace reprise::cli {
namespace {

struct SynthOptions {
  std::string like;
  std::string type = "f16";
  std::string out;
  uint64_t seed = 1;
  int layers = 0;  // 0: the shape's own count
  int threads = 0;
  bool force = false;
};

int run_synth(const SynthOptions& o) {
  // Before the weights are generated (seconds, gigabytes), not after.
  check_output_file(o.out, o.force, "-o");
  auto shape = synth::find_shape(o.like);
  if (!shape) {
    std::string names;
    for (const auto& s : synth::known_shapes()) names += (names.empty() ? "" : ", ") + s.name;
    throw Error(fmt::format("--like {}: unknown model (known: {})", o.like, names));
  }
  if (o.layers > 0) shape->n_layer = o.layers;
  auto ft = synth::parse_file_type(o.type);
  if (!ft)
    throw Error(
        fmt::format("--type {}: expected f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, "
                    "q2_k, q3_k, q4_k, q5_k, q6_k, iq4_xs or q4_k_m",
                    o.type));
  ThreadPool pool(o.threads > 0 ? o.threads : ThreadPool::default_threads());
  const Stopwatch clock;
  // Parts: the embeddings and head, then one per layer.
  Progress progress(static_cast<size_t>(shape->n_layer) + 1, "parts");
  auto st =
      synth::write_synth_model(*shape, *ft, o.seed, o.out, o.force, pool, [&](int done, int total) {
        progress.update(static_cast<size_t>(done), done < total ? "generating layers" : "writing");
      });
  progress.finish();
  const double s = clock.seconds();
  fmt::print(stderr,
             "{}: {} like {} ({} layers, {:.1f} M parameters), {} tensors, {:.1f} MiB in "
             "{:.1f} s\n",
             o.out, ft->name, shape->name, shape->n_layer, st.parameters / 1e6, st.tensors,
             st.bytes / 1048576.0, s);
  return 0;
}

}  // namespace

void add_synth(CLI::App& app, Runner& run) {
  auto o = std::make_shared<SynthOptions>();
  auto* sub = app.add_subcommand(
      "synth", "write a seeded random-weight model at the real shapes of a known checkpoint");
  std::string names;
  for (const auto& s : synth::known_shapes()) names += (names.empty() ? "" : ", ") + s.name;
  sub->add_option("--like", o->like, "shapes to copy: " + names)->required();
  sub->add_option("--layers", o->layers, "number of layers (default: the model's own)")
      ->check(CLI::Range(1, 4096));
  sub->add_option("--type", o->type,
                  "f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1, iq4_nl, q2_k, q3_k, q4_k, q5_k, "
                  "q6_k, iq4_xs or q4_k_m (default: f16)");
  sub->add_option("-o,--output", o->out, "output .gguf file")->required();
  sub->add_option("--seed", o->seed, "random seed (default: 1)");
  sub->add_option("-t,--threads", o->threads, "threads (default: all cores)")
      ->check(CLI::Range(0, 1024));
  sub->add_flag("-f,--force", o->force, "overwrite an existing output file");
  sub->callback([&run, o] { run = [o] { return run_synth(*o); }; });
}

}  // namespace reprise::cli
