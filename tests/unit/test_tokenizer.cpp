// Tokenizers against llama.cpp's token ids (tests/data/tokenizer/*.json, copied from the shared
// goldens), round trips, special-token handling, the Hugging Face loader and Utf8Stream.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "format/gguf.h"
#include "model/hf_tokenizer.h"
#include "model/pretokenizer.h"
#include "model/tokenizer.h"
#include "model/utf8_stream.h"
#include "model/vocab.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

using test::shared_dir;
using test::source_dir;

struct GoldenCase {
  std::string text;
  std::vector<int32_t> ids;
};

struct Golden {
  std::string vocab_file;  // relative to the repo (models/...) or to the shared dir
  std::vector<GoldenCase> cases;
};

Golden load_golden(const std::string& name) {
  const auto path = source_dir() / "tests" / "data" / "tokenizer" / (name + ".json");
  std::ifstream f(path);
  if (!f) throw std::runtime_error("cannot open " + path.string());
  const auto j = nlohmann::json::parse(f);
  Golden g;
  g.vocab_file = j.at("vocab_file").get<std::string>();
  for (const auto& c : j.at("cases"))
    g.cases.push_back({c.at("text").get<std::string>(), c.at("ids").get<std::vector<int32_t>>()});
  return g;
}

// Where a golden's vocabulary lives; empty when it is in the shared dir and that is missing.
std::filesystem::path vocab_path(const std::string& vocab_file) {
  if (vocab_file.starts_with("models/")) return source_dir() / vocab_file;
  if (shared_dir().empty()) return {};
  return shared_dir() / vocab_file;
}

// Tokenizers are expensive to build for 150k vocabularies; share them across tests.
const Tokenizer& tokenizer_for(const std::filesystem::path& path) {
  static std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  auto& slot = cache[path.string()];
  if (!slot) slot = make_tokenizer(vocab_from_gguf(*GgufFile::open(path)));
  return *slot;
}

const EncodeOptions kPlain{.add_bos = false, .parse_special = false};

std::string ids_string(const std::vector<int32_t>& ids) {
  std::ostringstream ss;
  for (size_t i = 0; i < ids.size(); ++i) ss << (i ? "," : "") << ids[i];
  return "[" + ss.str() + "]";
}

class GoldenTokenizer : public ::testing::TestWithParam<std::string> {};

TEST_P(GoldenTokenizer, MatchesLlamaCppIds) {
  const Golden g = load_golden(GetParam());
  const auto path = vocab_path(g.vocab_file);
  if (path.empty()) GTEST_SKIP() << "shared dir not found; needs " << g.vocab_file;
  const Tokenizer& tok = tokenizer_for(path);
  ASSERT_EQ(g.cases.size(), 46u);
  int mismatches = 0;
  for (const GoldenCase& c : g.cases) {
    const auto ids = tok.encode(c.text, kPlain);
    if (ids != c.ids) {
      ++mismatches;
      ADD_FAILURE() << GetParam() << ": \"" << c.text << "\"\n  want " << ids_string(c.ids)
                    << "\n  got  " << ids_string(ids);
    }
  }
  EXPECT_EQ(mismatches, 0);
}

TEST_P(GoldenTokenizer, DecodeRoundTrips) {
  const Golden g = load_golden(GetParam());
  const auto path = vocab_path(g.vocab_file);
  if (path.empty()) GTEST_SKIP() << "shared dir not found; needs " << g.vocab_file;
  const Tokenizer& tok = tokenizer_for(path);
  for (const GoldenCase& c : g.cases) {
    EXPECT_EQ(tok.decode(tok.encode(c.text, kPlain)), c.text) << GetParam();
    // The golden ids themselves decode to the text too.
    EXPECT_EQ(tok.decode(c.ids), c.text) << GetParam();
  }
}

INSTANTIATE_TEST_SUITE_P(AllVocabs, GoldenTokenizer,
                         ::testing::Values("llama-spm", "llama-bpe", "qwen2", "tok512-stories260K",
                                           "tiny-bpe-qwen"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

const Tokenizer& stories() {
  return tokenizer_for(test::default_model());
}

TEST(SpmTokenizer, AddsBosWhenAsked) {
  const auto ids = stories().encode("Once upon a time", EncodeOptions{});
  ASSERT_FALSE(ids.empty());
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(stories().encode("Once upon a time", kPlain),
            std::vector<int32_t>(ids.begin() + 1, ids.end()));
  EXPECT_EQ(stories().encode("", EncodeOptions{}), std::vector<int32_t>{1});
}

TEST(SpmTokenizer, SpecialTokensOnlyWithParseSpecial) {
  const Tokenizer& tok = stories();
  const auto parsed = tok.encode("<s>Hello</s>", {.add_bos = false, .parse_special = true});
  ASSERT_GE(parsed.size(), 3u);
  EXPECT_EQ(parsed.front(), 1);
  EXPECT_EQ(parsed.back(), 2);
  // The text between specials is tokenized as a fresh sentence (with its space prefix).
  const auto hello = tok.encode("Hello", kPlain);
  EXPECT_EQ(std::vector<int32_t>(parsed.begin() + 1, parsed.end() - 1), hello);
  const auto literal = tok.encode("<s>Hello</s>", kPlain);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 1), 0);
  EXPECT_EQ(tok.decode(literal), "<s>Hello</s>");
}

TEST(SpmTokenizer, PiecesOfSpecialByteAndNormalTokens) {
  const Tokenizer& tok = stories();
  EXPECT_EQ(tok.token_to_piece(1), "");     // <s> is a control token
  EXPECT_EQ(tok.token_to_piece(13), "\n");  // <0x0A>
  EXPECT_EQ(tok.token_to_piece(410), " ");  // U+2581
  EXPECT_THROW(tok.token_to_piece(512), Error);
  EXPECT_THROW(tok.token_to_piece(-1), Error);
}

TEST(SpmTokenizer, InvalidUtf8FallsBackToBytes) {
  // SentencePiece does not reject malformed text; unknown bytes become <0xXX> tokens.
  const std::string text =
      "a\xff"
      "b";
  const auto ids = stories().encode(text, kPlain);
  EXPECT_EQ(stories().decode(ids), text);
}

// A 10 kB prompt: encodes and round-trips (speed: bench/bench_tokenizer, not a timed test).
TEST(SpmTokenizer, LongPromptRoundTrips) {
  std::string text;
  while (text.size() < 10000) text += "Once upon a time, there was a little girl named Lily. ";
  const auto ids = stories().encode(text, kPlain);
  EXPECT_LT(ids.size(), text.size() / 2);  // words were merged, not left as bytes
  EXPECT_EQ(stories().decode(ids), text);
}

// A 10 kB prompt through a 150k vocabulary: encodes and round-trips. How fast is measured by
// bench/bench_tokenizer (BM_EncodeLongPrompt), not here: timed unit tests fail on a loaded host.
TEST(BpeTokenizer, LargeVocabLongPromptRoundTrips) {
  if (shared_dir().empty()) GTEST_SKIP() << "shared dir not found; needs fixtures/vocab";
  const Tokenizer& tok = tokenizer_for(shared_dir() / "fixtures/vocab/ggml-vocab-qwen2.gguf");
  std::string text;
  while (text.size() < 10000)
    text += "Hello, y'all! How are you 😁 ?我想在apple工作1314151天～ нещо на Български\n  ";
  const auto ids = tok.encode(text, kPlain);
  EXPECT_GT(ids.size(), text.size() / 8);  // merges happened, but not into a handful of tokens
  EXPECT_LT(ids.size(), text.size());
  EXPECT_EQ(tok.decode(ids), text);
}

TEST(BpeTokenizer, Llama3AddsBosByDefault) {
  if (shared_dir().empty()) GTEST_SKIP() << "shared dir not found; needs fixtures/vocab";
  const Tokenizer& tok = tokenizer_for(shared_dir() / "fixtures/vocab/ggml-vocab-llama-bpe.gguf");
  EXPECT_TRUE(tok.vocab().add_bos);
  const auto ids = tok.encode("Hello world", EncodeOptions{});
  EXPECT_EQ(ids, (std::vector<int32_t>{128000, 9906, 1917}));
  EXPECT_EQ(tok.vocab().eot, 128009);  // <|eot_id|>, found by its text
}

TEST(BpeTokenizer, QwenSpecialTokensAndNoBos) {
  if (shared_dir().empty()) GTEST_SKIP() << "shared dir not found; needs fixtures";
  const Tokenizer& tok = tokenizer_for(shared_dir() / "fixtures/qwen2-tiny-f32.gguf");
  EXPECT_FALSE(tok.vocab().add_bos);
  const std::string prompt = "<|im_start|>user\nHi<|im_end|>\n";
  const auto ids = tok.encode(prompt, {.add_bos = true, .parse_special = true});
  ASSERT_GE(ids.size(), 3u);
  EXPECT_EQ(ids.front(), 510);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), 511), 1);
  const auto literal = tok.encode(prompt, kPlain);
  EXPECT_EQ(std::count(literal.begin(), literal.end(), 510), 0);
  EXPECT_EQ(tok.decode(literal), prompt);
  // Control tokens decode to nothing.
  EXPECT_EQ(tok.decode(ids), "user\nHi\n");
}

TEST(BpeTokenizer, InvalidUtf8IsAnError) {
  if (shared_dir().empty()) GTEST_SKIP() << "shared dir not found; needs fixtures";
  const Tokenizer& tok = tokenizer_for(shared_dir() / "fixtures/qwen2-tiny-f32.gguf");
  try {
    tok.encode("abc\xC3(def", kPlain);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "invalid UTF-8 in prompt at byte 3");
  }
  EXPECT_THROW(tok.encode("\xED\xA0\x80", kPlain), Error);     // a UTF-16 surrogate
  EXPECT_THROW(tok.encode("\xC0\xAF", kPlain), Error);         // overlong '/'
  EXPECT_THROW(tok.encode("end\xF0\x9F\xA6", kPlain), Error);  // cut short
}

// ---- Hugging Face directory ------------------------------------------------------------------

TEST(HfTokenizer, Stories260KMatchesGgufVocab) {
  if (shared_dir().empty()) GTEST_SKIP() << "shared dir not found; needs fixtures/hf";
  const auto hf = vocab_from_hf_dir(shared_dir() / "fixtures/hf/stories260K-f32");
  ASSERT_TRUE(hf.has_value());
  const Vocab gguf = vocab_from_gguf(*GgufFile::open(test::default_model()));
  EXPECT_EQ(hf->model, Vocab::Model::Spm);
  EXPECT_EQ(hf->tokens, gguf.tokens);
  EXPECT_EQ(hf->attrs, gguf.attrs);
  EXPECT_EQ(hf->bos, 1);
  EXPECT_EQ(hf->eos, 2);
  EXPECT_EQ(hf->unk, 0);
  EXPECT_TRUE(hf->add_bos);
  EXPECT_TRUE(hf->add_space_prefix);

  const auto tok = make_tokenizer(*hf);
  const Golden g = load_golden("tok512-stories260K");
  int mismatches = 0;
  for (const GoldenCase& c : g.cases) {
    const auto ids = tok->encode(c.text, kPlain);
    if (ids != c.ids) {
      ++mismatches;
      ADD_FAILURE() << "\"" << c.text << "\"\n  want " << ids_string(c.ids) << "\n  got  "
                    << ids_string(ids);
    }
    EXPECT_EQ(tok->decode(ids), c.text);
  }
  EXPECT_EQ(mismatches, 0);
}

TEST(HfTokenizer, MissingTokenizerJsonIsNullopt) {
  EXPECT_FALSE(vocab_from_hf_dir(source_dir() / "tests" / "data").has_value());
}

// A byte-level tokenizer.json in the Qwen2 layout, small enough to write inline.
std::string qwen_style_tokenizer_json() {
  nlohmann::json vocab = nlohmann::json::object();
  // GPT-2's byte map for the ASCII letters used below is the identity; space is U+0120.
  int id = 0;
  for (const char* t : {"a", "b", "c", "\xC4\xA0", "ab",
                        "\xC4\xA0"
                        "c",
                        "abc"})
    vocab[t] = id++;
  nlohmann::json j = {
      {"model",
       {{"type", "BPE"},
        {"vocab", vocab},
        {"merges", nlohmann::json::array({nlohmann::json::array({"a", "b"}), "ab c",
                                          nlohmann::json::array({"\xC4\xA0", "c"})})}}},
      {"added_tokens",
       {{{"id", 7}, {"content", "<|endoftext|>"}, {"special", true}},
        {{"id", 8}, {"content", "<|im_end|>"}, {"special", true}},
        {{"id", 9}, {"content", "<tool>"}, {"special", false}}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"},
           {"pattern",
            {{"Regex",
              R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"}}},
           {"behavior", "Isolated"}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
      {"decoder", {{"type", "ByteLevel"}}},
  };
  return j.dump();
}

TEST(HfTokenizer, ByteLevelQwenStyle) {
  const std::string config =
      R"({"eos_token": "<|im_end|>", "bos_token": null, "pad_token": "<|endoftext|>",
          "chat_template": "{% for m in messages %}<|im_start|>{% endfor %}"})";
  const Vocab v = vocab_from_hf_json(qwen_style_tokenizer_json(), config, "", "/x/tokenizer.json");
  EXPECT_EQ(v.model, Vocab::Model::Bpe);
  EXPECT_EQ(v.pre, "qwen2");
  EXPECT_EQ(v.merges, (std::vector<std::string>{"a b", "ab c", "\xC4\xA0 c"}));
  EXPECT_EQ(v.eos, 8);
  EXPECT_EQ(v.eot, 8);
  EXPECT_EQ(v.pad, 7);
  EXPECT_EQ(v.bos, -1);
  EXPECT_FALSE(v.add_bos);
  EXPECT_EQ(v.attrs[8], TokenAttr::Control);
  EXPECT_EQ(v.attrs[9], TokenAttr::UserDefined);
  EXPECT_EQ(v.chat_template, "{% for m in messages %}<|im_start|>{% endfor %}");

  const auto tok = make_tokenizer(v);
  EXPECT_EQ(tok->encode("abc c", kPlain), (std::vector<int32_t>{6, 5}));
  // User-defined tokens are cut out even without parse_special; control tokens are not.
  EXPECT_EQ(tok->encode("ab<tool>c", kPlain), (std::vector<int32_t>{4, 9, 2}));
  EXPECT_EQ(tok->encode("c<|im_end|>", {.add_bos = false, .parse_special = true}),
            (std::vector<int32_t>{2, 8}));
  EXPECT_EQ(tok->decode(std::vector<int32_t>{6, 5, 9}), "abc c<tool>");
}

// tokenizer.json text for a byte-level GGUF vocabulary, laid out as the HF converter would.
std::string tokenizer_json_from(const Vocab& v, const std::string& split_regex) {
  nlohmann::json vocab = nlohmann::json::object();
  nlohmann::json added = nlohmann::json::array();
  for (int32_t id = 0; id < v.size(); ++id) {
    if (v.attrs[id] == TokenAttr::Control || v.attrs[id] == TokenAttr::UserDefined)
      added.push_back(
          {{"id", id}, {"content", v.tokens[id]}, {"special", v.attrs[id] == TokenAttr::Control}});
    else
      vocab[v.tokens[id]] = id;
  }
  nlohmann::json post = nullptr;
  if (v.add_bos)
    post = {{"type", "TemplateProcessing"},
            {"single",
             {{{"SpecialToken", {{"id", v.tokens[v.bos]}, {"type_id", 0}}}},
              {{"Sequence", {{"id", "A"}, {"type_id", 0}}}}}}};
  nlohmann::json j = {
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", v.merges}}},
      {"added_tokens", added},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", split_regex}}}, {"behavior", "Isolated"}},
          {{"type", "ByteLevel"}, {"use_regex", false}}}}}},
      {"post_processor", post},
      {"decoder", {{"type", "ByteLevel"}}},
  };
  return j.dump();
}

constexpr const char* kQwen2Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3Split =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

class HfByteLevel : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(HfByteLevel, SameIdsAsGguf) {
  const auto [golden_name, regex] = GetParam();
  const Golden g = load_golden(golden_name);
  const auto path = vocab_path(g.vocab_file);
  if (path.empty()) GTEST_SKIP() << "shared dir not found; needs " << g.vocab_file;
  const Vocab gguf = vocab_from_gguf(*GgufFile::open(path));
  nlohmann::json config = {{"eos_token", gguf.tokens[gguf.eos]}};
  if (gguf.bos >= 0) config["bos_token"] = gguf.tokens[gguf.bos];
  const Vocab hf =
      vocab_from_hf_json(tokenizer_json_from(gguf, regex), config.dump(), "", "/x/tokenizer.json");
  EXPECT_EQ(hf.pre, std::string(golden_name) == "llama-bpe" ? "llama-bpe" : "qwen2");
  EXPECT_EQ(hf.add_bos, gguf.add_bos);
  EXPECT_EQ(hf.bos, gguf.add_bos ? gguf.bos : hf.bos);
  EXPECT_EQ(hf.eos, gguf.eos);
  const auto tok = make_tokenizer(hf);
  int mismatches = 0;
  for (const GoldenCase& c : g.cases)
    if (tok->encode(c.text, kPlain) != c.ids) {
      ++mismatches;
      ADD_FAILURE() << golden_name << ": \"" << c.text << "\"";
    }
  EXPECT_EQ(mismatches, 0);
}

INSTANTIATE_TEST_SUITE_P(Vocabs, HfByteLevel,
                         ::testing::Values(std::make_pair("tiny-bpe-qwen", kQwen2Split),
                                           std::make_pair("llama-bpe", kLlama3Split)),
                         [](const auto& info) {
                           std::string n = info.param.first;
                           for (char& c : n)
                             if (c == '-') c = '_';
                           return n;
                         });

TEST(PreTokenizer, PresetsSplit) {
  using Words = std::vector<std::string_view>;
  EXPECT_EQ(PreTokenizer("gpt2").split("Hello world's  end 1234"),
            (Words{"Hello", " world", "'s", " ", " end", " 1234"}));
  EXPECT_EQ(PreTokenizer("llama3").split("Hello world's  end 1234\n\n"),
            (Words{"Hello", " world", "'s", " ", " end", " ", "123", "4", "\n\n"}));
  EXPECT_EQ(PreTokenizer("qwen2").split("I'M 42"), (Words{"I", "'M", " ", "4", "2"}));
  EXPECT_EQ(PreTokenizer("default").split("a+b 1234"), (Words{"a", "+", "b", " ", "123", "4"}));
  EXPECT_TRUE(PreTokenizer("llama-bpe").ignore_merges());
  EXPECT_FALSE(PreTokenizer("qwen2").ignore_merges());
  EXPECT_TRUE(PreTokenizer("qwen2").split("").empty());
  EXPECT_THROW(PreTokenizer("nope"), Error);
}

// Qwen3.5's tokenizer.json regex (Qwen2's with \p{M} beside \p{L}) is llama.cpp's qwen35
// pre-tokenizer, which keeps a combining mark with its letters.
TEST(HfTokenizer, Qwen35SplitRegex) {
  std::string json = qwen_style_tokenizer_json();
  for (const auto& [from, to] :
       {std::pair<std::string, std::string>{R"(]?\\p{L}+|)", R"(]?[\\p{L}\\p{M}]+|)"},
        {R"( ?[^\\s\\p{L}\\p{N}]+)", R"( ?[^\\s\\p{L}\\p{M}\\p{N}]+)"}}) {
    const size_t at = json.find(from);
    ASSERT_NE(at, std::string::npos) << from;
    json.replace(at, from.size(), to);
  }
  const Vocab v = vocab_from_hf_json(json, "", "", "/x/tokenizer.json");
  EXPECT_EQ(v.pre, "qwen35");
  using Words = std::vector<std::string_view>;
  EXPECT_EQ(PreTokenizer(v.pre).split("e\xCC\x81x"), (Words{"e\xCC\x81x"}));
}

TEST(HfTokenizer, UnknownSplitRegexIsAnError) {
  std::string json = qwen_style_tokenizer_json();
  const std::string needle = R"(\\p{N}|)";
  json.replace(json.find(needle), needle.size(), R"(\\p{N}{1,5}|)");
  try {
    vocab_from_hf_json(json, "", "", "/x/tokenizer.json");
    FAIL() << "expected a FormatError";
  } catch (const FormatError& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with(
        "/x/tokenizer.json: pre_tokenizer Split regex is not one we recognise"))
        << e.what();
  }
}

TEST(HfTokenizer, SparseTokenIdsAreRefused) {
  // Unused ids become "[PADn]" slots: a tiny file must not be able to demand millions of them.
  const auto vocab_json = [](const std::string& vocab) {
    return R"({"model": {"type": "BPE", "byte_fallback": true, "merges": [], "vocab": )" + vocab +
           "}}";
  };
  try {
    vocab_from_hf_json(vocab_json(R"({"a": 0, "b": 5000000})"), "", "", "/x/tokenizer.json");
    FAIL() << "expected a FormatError";
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(),
                 "/x/tokenizer.json: token ids go up to 5000000 but only 2 tokens are defined");
  }
  // A gap of a few thousand ids (reserved ranges) is fine.
  const Vocab v = vocab_from_hf_json(vocab_json(R"({"a": 0, "b": 3000})"),
                                     R"({"add_bos_token": false})", "", "/x/tokenizer.json");
  ASSERT_EQ(v.tokens.size(), 3001u);
  EXPECT_EQ(v.tokens[1], "[PAD1]");
  EXPECT_EQ(v.tokens[3000], "b");
}

TEST(HfTokenizer, UnigramIsAnError) {
  try {
    vocab_from_hf_json(R"({"model": {"type": "Unigram", "vocab": []}})", "", "",
                       "/x/tokenizer.json");
    FAIL() << "expected a FormatError";
  } catch (const FormatError& e) {
    EXPECT_STREQ(e.what(), "/x/tokenizer.json: model.type \"Unigram\" is not supported (only BPE)");
  }
}

TEST(HfTokenizer, BadJsonNamesTheFile) {
  try {
    vocab_from_hf_json("{\"model\": ", "", "", "/x/tokenizer.json");
    FAIL() << "expected a FormatError";
  } catch (const FormatError& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with("/x/tokenizer.json: invalid JSON")) << e.what();
  }
}

// ---- Utf8Stream ------------------------------------------------------------------------------

TEST(Utf8Stream, EmojiSplitAcrossFourByteTokens) {
  if (shared_dir().empty()) GTEST_SKIP() << "shared dir not found; needs fixtures";
  // The tiny Qwen vocabulary has no emoji tokens: 🦙 is spelled as its four bytes.
  const Tokenizer& tok = tokenizer_for(shared_dir() / "fixtures/qwen2-tiny-f32.gguf");
  const auto ids = tok.encode("a🦙b", kPlain);
  ASSERT_EQ(ids.size(), 6u);
  Utf8Stream stream;
  std::vector<std::string> outputs;
  for (int32_t id : ids) outputs.push_back(stream.push(tok.token_to_piece(id)));
  EXPECT_EQ(outputs, (std::vector<std::string>{"a", "", "", "", "🦙", "b"}));
  EXPECT_EQ(stream.flush(), "");
}

TEST(Utf8Stream, HoldsBackAndFlushes) {
  Utf8Stream s;
  const std::string llama = "\xF0\x9F\xA6\x99";
  EXPECT_EQ(s.push(llama.substr(0, 1)), "");
  EXPECT_EQ(s.push(llama.substr(1, 2)), "");
  EXPECT_EQ(s.pending(), 3u);
  EXPECT_EQ(s.push(llama.substr(3) + "x\xE2\x82"), llama + "x");
  EXPECT_EQ(s.flush(), "\xE2\x82");  // the rest, even though it is incomplete
  EXPECT_EQ(s.pending(), 0u);
  EXPECT_EQ(s.push("é"), "é");
}

TEST(Utf8Stream, InvalidBytesPassOrAreReplaced) {
  Utf8Stream keep;
  EXPECT_EQ(keep.push("a\xFF"
                      "b"),
            "a\xFF"
            "b");
  EXPECT_EQ(keep.push("\xE2(x"), "\xE2(x");  // a lead byte whose sequence breaks off
  Utf8Stream replace(Utf8Stream::Invalid::Replace);
  EXPECT_EQ(replace.push("a\xFF"
                         "b"),
            "a\xEF\xBF\xBD"
            "b");
  EXPECT_EQ(replace.push("\xF0\x9F"), "");
  EXPECT_EQ(replace.flush(), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(Utf8, FindInvalid) {
  EXPECT_EQ(find_invalid_utf8("plain ascii"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("ä🦙ק"), std::string_view::npos);
  EXPECT_EQ(find_invalid_utf8("ab\x80"), 2u);
  EXPECT_EQ(find_invalid_utf8("\xF4\x90\x80\x80"), 0u);  // above U+10FFFF
  EXPECT_EQ(find_invalid_utf8("x\xE0\x80\x80"), 1u);     // overlong
}

}  // namespace
}  // namespace reprise
