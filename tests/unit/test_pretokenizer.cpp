// Pre-tokenizer presets by tokenizer.ggml.pre name (expected splits worked out by hand from the
// regexes llama.cpp runs for each name), and vocabulary-only GGUFs through the CLI against the
// shared tokenizer goldens.
#include <gtest/gtest.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>

#include "model/hf_tokenizer.h"
#include "model/model.h"
#include "model/pretokenizer.h"
#include "model/tokenizer.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

using Words = std::vector<std::string_view>;

TEST(PreTokenizer, SmollmSplitsEveryDigitThenAppliesGpt2) {
  const PreTokenizer smollm("smollm");
  EXPECT_EQ(smollm.split("abc 12345 def"), (Words{"abc", " ", "1", "2", "3", "4", "5", " def"}));
  // GPT-2 alone keeps " 2024" whole; the digit pass takes the space off first.
  EXPECT_EQ(PreTokenizer("gpt-2").split("in 2024"), (Words{"in", " 2024"}));
  EXPECT_EQ(smollm.split("in 2024"), (Words{"in", " ", "2", "0", "2", "4"}));
  // Non-ASCII digits count too (Arabic-Indic four, fullwidth seven).
  EXPECT_EQ(smollm.split("x\u0664\uff17"), (Words{"x", "\u0664", "\uff17"}));
  EXPECT_EQ(smollm.split("it's  ok\n"), (Words{"it", "'s", " ", " ok", "\n"}));
  EXPECT_FALSE(smollm.ignore_merges());
  EXPECT_FALSE(PreTokenizer::adds_bos("smollm"));
}

TEST(PreTokenizer, AliasesShareTheirFamilysSplit) {
  const std::string text = "Hi there's 12345 x\n\n";
  const auto split = [&](const char* name) {
    std::vector<std::string> out;
    for (std::string_view w : PreTokenizer(name).split(text)) out.emplace_back(w);
    return out;
  };
  for (const char* name : {"starcoder", "refact", "command-r", "codeshell", "exaone", "minerva-7b"})
    EXPECT_EQ(split(name), split("smollm")) << name;
  for (const char* name : {"llama-v3", "llama-bpe", "falcon3", "dbrx", "smaug-bpe"})
    EXPECT_EQ(split(name), split("llama3")) << name;
  for (const char* name : {"deepseek-r1-qwen", "stablelm2", "megrez"})
    EXPECT_EQ(split(name), split("qwen2")) << name;
  for (const char* name : {"gpt2", "phi-2", "mpt", "olmo"})
    EXPECT_EQ(split(name), split("gpt-2")) << name;
}

TEST(PreTokenizer, LlamaThreeFamilyAddsBosAndSkipsMerges) {
  for (const char* name : {"llama3", "llama-bpe", "falcon3", "pixtral"}) {
    EXPECT_TRUE(PreTokenizer::adds_bos(name)) << name;
    EXPECT_TRUE(PreTokenizer(name).ignore_merges()) << name;
  }
  // Same pattern, neither habit.
  EXPECT_FALSE(PreTokenizer::adds_bos("dbrx"));
  EXPECT_FALSE(PreTokenizer("dbrx").ignore_merges());
  EXPECT_FALSE(PreTokenizer::adds_bos("qwen2"));
  EXPECT_FALSE(PreTokenizer::adds_bos("no-such-name"));
}

TEST(PreTokenizer, DeepseekFamilies) {
  // deepseek-coder: newlines alone, letters, punctuation, CJK runs and single digits.
  EXPECT_EQ(PreTokenizer("deepseek-coder").split("ab,\n12"), (Words{"ab", ",", "\n", "1", "2"}));
  // deepseek-llm: cased letters only, so the CJK run is cut by its own pattern; digits stay in
  // runs.
  EXPECT_EQ(PreTokenizer("deepseek-llm").split("Hi \u4f60\u597d 123"),
            (Words{"Hi", " ", "\u4f60\u597d", " ", "123"}));
  // qwen35: a combining mark stays in its word (qwen2 would cut it off).
  EXPECT_EQ(PreTokenizer("qwen35").split("e\u0301t\u00e9"), (Words{"e\u0301t\u00e9"}));
  EXPECT_EQ(PreTokenizer("qwen2").split("e\u0301t\u00e9"), (Words{"e", "\u0301t\u00e9"}));
}

TEST(PreTokenizer, EveryKnownNameCompiles) {
  for (const std::string& name : PreTokenizer::known_names()) {
    EXPECT_NO_THROW(PreTokenizer{name}) << name;
    EXPECT_TRUE(PreTokenizer::is_known(name)) << name;
  }
  EXPECT_TRUE(PreTokenizer::is_known(""))
      << "a file without tokenizer.ggml.pre gets llama.cpp's default";
}

TEST(PreTokenizer, UnknownNameIsAnErrorNamingIt) {
  try {
    PreTokenizer p("tekken-9000");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "\"tekken-9000\"");
    EXPECT_CONTAINS(e.what(), "smollm");  // the message lists the known names
  }
}

// A Hugging Face tokenizer.json whose pre-tokenizer is `pre` (a tiny byte-level vocabulary).
std::string hf_json_with_pre_tokenizer(const nlohmann::json& pre) {
  nlohmann::json vocab = {{"a", 0}, {"1", 1}, {"2", 2}, {"12", 3}, {"\xC4\xA0", 4}};
  nlohmann::json j = {{"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", {"1 2"}}}},
                      {"added_tokens", nlohmann::json::array()},
                      {"pre_tokenizer", pre},
                      {"decoder", {{"type", "ByteLevel"}}}};
  return j.dump();
}

TEST(HfPreTokenizer, SmolLMDigitsThenByteLevel) {
  const nlohmann::json smollm = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Digits"}, {"individual_digits", true}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", true}}}}};
  const Vocab v = vocab_from_hf_json(hf_json_with_pre_tokenizer(smollm), "{}", "", "/x/t.json");
  EXPECT_EQ(v.pre, "smollm");
  // The merge "1 2" exists, but digits are words of their own, so it never applies.
  EXPECT_EQ(make_tokenizer(v)->encode("12", {.add_bos = false}), (std::vector<int32_t>{1, 2}));

  nlohmann::json grouped = smollm;
  grouped["pretokenizers"][0]["individual_digits"] = false;
  try {
    vocab_from_hf_json(hf_json_with_pre_tokenizer(grouped), "{}", "", "/x/t.json");
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "Digits without individual_digits");
  }
}

// --- vocabulary-only GGUFs (llama.cpp's ggml-vocab-*.gguf test files carry no tensors) ---

std::filesystem::path vocab_only(const std::string& name) {
  return test::shared_dir() / "fixtures" / "vocab" / ("ggml-vocab-" + name + ".gguf");
}

// Shell quoting for one argument.
std::string quoted(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class VocabOnlyCli : public ::testing::TestWithParam<std::string> {};

// `reprise tokenize` on each shared vocab file gives the golden ids for its first cases (each case
// is a process, so only six; the in-process GoldenTokenizer test covers every case).
TEST_P(VocabOnlyCli, TokenizeMatchesGolden) {
  if (!test::have_shared()) GTEST_SKIP() << "shared fixtures not present";
  std::ifstream f(test::source_dir() / "tests" / "data" / "tokenizer" / (GetParam() + ".json"));
  ASSERT_TRUE(f) << GetParam();
  const auto golden = nlohmann::json::parse(f);
  const auto path = test::shared_dir() / golden.at("vocab_file").get<std::string>();
  int checked = 0;
  for (const auto& c : golden.at("cases")) {
    const auto text = c.at("text").get<std::string>();
    if (text.empty() || text.find('\0') != std::string::npos) continue;
    const auto r =
        test::run_cli("tokenize -m " + quoted(path.string()) + " --no-bos -p " + quoted(text));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    std::string want = "[";
    for (const auto& id : c.at("ids"))
      want += (want.size() > 1 ? ", " : "") + std::to_string(id.get<int>());
    EXPECT_EQ(r.out, want + "]\n") << "text: " << text;
    if (++checked == 6) break;
  }
  EXPECT_EQ(checked, 6);
}

INSTANTIATE_TEST_SUITE_P(SharedVocabs, VocabOnlyCli,
                         ::testing::Values("llama-spm", "llama-bpe", "qwen2"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(VocabOnly, InfoDescribesTheVocabulary) {
  if (!test::have_shared()) GTEST_SKIP() << "shared fixtures not present";
  const auto r = test::run_cli("info " + quoted(vocab_only("qwen2").string()));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_CONTAINS(r.out, "weights:      none (a vocabulary-only file)");
  EXPECT_CONTAINS(r.out, "tokenizer:    BPE (gpt2), pre-tokenizer qwen2, 151936 tokens");
  EXPECT_CONTAINS(r.out, "tokenizer.ggml.pre");
}

TEST(VocabOnly, RunningItIsAOneLineError) {
  if (!test::have_shared()) GTEST_SKIP() << "shared fixtures not present";
  const auto path = vocab_only("llama-spm").string();
  const auto r = test::run_cli("run -m " + quoted(path) + " -p hi -n 1");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, path + ": has no tensors (a vocabulary-only file)");
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(VocabOnly, LoadsForTheTokenizerOnly) {
  if (!test::have_shared()) GTEST_SKIP() << "shared fixtures not present";
  EXPECT_THROW(Model::load(vocab_only("llama-bpe")), FormatError);
  const auto m = Model::load(vocab_only("llama-bpe"), Model::Need::Tokenizer);
  EXPECT_TRUE(m->vocab_only());
  ASSERT_NE(m->tokenizer(), nullptr);
  EXPECT_EQ(m->hparams().n_vocab, m->tokenizer()->vocab().size());
  EXPECT_EQ(m->hparams().arch_name, "llama");
  EXPECT_TRUE(m->weights().blocks.empty());
}

}  // namespace
}  // namespace reprise
