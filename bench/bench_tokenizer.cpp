// Tokenizer speed (speed goals live here, never in timed unit tests): a 10 kB mixed-script prompt
// through Qwen2's 151k-token BPE vocabulary. The vocabulary comes from ../shared (this team's
// fixtures); set REPRISE_VOCAB=FILE.gguf to use another.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "format/gguf.h"
#include "model/tokenizer.h"
#include "model/vocab.h"

namespace {

using namespace reprise;

std::filesystem::path vocab_path() {
  if (const char* p = std::getenv("REPRISE_VOCAB")) return p;
  return std::filesystem::path(REPRISE_SOURCE_DIR) /
         "../shared/fixtures/vocab/ggml-vocab-qwen2.gguf";
}

void BM_EncodeLongPrompt(benchmark::State& state) {
  const auto path = vocab_path();
  if (!std::filesystem::exists(path)) {
    state.SkipWithError(("no vocabulary at " + path.string() + " (set REPRISE_VOCAB)").c_str());
    return;
  }
  const std::unique_ptr<Tokenizer> tok = make_tokenizer(vocab_from_gguf(*GgufFile::open(path)));
  std::string text;
  while (text.size() < 10000)
    text += "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～ нещо на Български\n  ";
  size_t n = 0;
  for (auto _ : state) n = tok->encode(text, {.add_bos = false, .parse_special = false}).size();
  state.counters["tokens"] = static_cast<double>(n);
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * text.size()));
}
BENCHMARK(BM_EncodeLongPrompt)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
