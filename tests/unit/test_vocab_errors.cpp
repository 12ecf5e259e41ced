// vocab_from_gguf on small hand-written GGUF files: defaults, and one-line errors for malformed
// or unsupported vocabularies.
#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <variant>

#include <unistd.h>

#include "format/gguf.h"
#include "model/tokenizer.h"
#include "model/vocab.h"
#include "util/error.h"

namespace reprise {
namespace {

// Just enough of a GGUF v3 writer for metadata-only files.
class GgufBuilder {
 public:
  using Value = std::variant<std::string, uint32_t, int32_t, bool, std::vector<std::string>,
                             std::vector<float>, std::vector<int32_t>>;

  GgufBuilder& set(const std::string& key, Value v) {
    for (auto& kv : kvs_)
      if (kv.first == key) {
        kv.second = std::move(v);
        return *this;
      }
    kvs_.emplace_back(key, std::move(v));
    return *this;
  }
  GgufBuilder& erase(const std::string& key) {
    std::erase_if(kvs_, [&](const auto& kv) { return kv.first == key; });
    return *this;
  }

  std::filesystem::path write(const std::string& name) const {
    const auto path = std::filesystem::temp_directory_path() /
                      ("reprise-vocab-" + std::to_string(::getpid()) + "-" + name + ".gguf");
    std::string out;
    put(out, uint32_t{0x46554747});
    put(out, uint32_t{3});
    put(out, uint64_t{0});
    put(out, uint64_t{kvs_.size()});
    for (const auto& [key, value] : kvs_) {
      put_string(out, key);
      std::visit([&](const auto& v) { put_value(out, v); }, value);
    }
    std::ofstream(path, std::ios::binary)
        .write(out.data(), static_cast<std::streamsize>(out.size()));
    return path;
  }

 private:
  template <typename T>
  static void put(std::string& out, T v) {
    char buf[sizeof(T)];
    std::memcpy(buf, &v, sizeof(T));
    out.append(buf, sizeof(T));
  }
  static void put_string(std::string& out, const std::string& s) {
    put(out, uint64_t{s.size()});
    out += s;
  }
  static void put_type(std::string& out, GgufType t) { put(out, static_cast<uint32_t>(t)); }
  static void put_value(std::string& out, const std::string& s) {
    put_type(out, GgufType::STRING);
    put_string(out, s);
  }
  static void put_value(std::string& out, uint32_t v) {
    put_type(out, GgufType::U32);
    put(out, v);
  }
  static void put_value(std::string& out, int32_t v) {
    put_type(out, GgufType::I32);
    put(out, v);
  }
  static void put_value(std::string& out, bool v) {
    put_type(out, GgufType::BOOL);
    put(out, static_cast<uint8_t>(v));
  }
  template <typename T>
  static void put_array(std::string& out, GgufType elem, const std::vector<T>& items) {
    put_type(out, GgufType::ARRAY);
    put_type(out, elem);
    put(out, uint64_t{items.size()});
    for (const T& x : items) {
      if constexpr (std::is_same_v<T, std::string>)
        put_string(out, x);
      else
        put(out, x);
    }
  }
  static void put_value(std::string& out, const std::vector<std::string>& v) {
    put_array(out, GgufType::STRING, v);
  }
  static void put_value(std::string& out, const std::vector<float>& v) {
    put_array(out, GgufType::F32, v);
  }
  static void put_value(std::string& out, const std::vector<int32_t>& v) {
    put_array(out, GgufType::I32, v);
  }

  std::vector<std::pair<std::string, Value>> kvs_;
};

// A byte-level BPE vocabulary: the 256 byte characters, one merge and two special tokens.
GgufBuilder bpe_builder() {
  std::vector<std::string> tokens;
  char32_t next = 256;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174;
    const char32_t cp = printable ? static_cast<char32_t>(b) : next++;
    std::string s;
    if (cp < 0x80) {
      s += static_cast<char>(cp);
    } else {
      s += static_cast<char>(0xC0 | (cp >> 6));
      s += static_cast<char>(0x80 | (cp & 0x3F));
    }
    tokens.push_back(s);
  }
  tokens.push_back("he");
  tokens.push_back("<|endoftext|>");
  tokens.push_back("<|im_end|>");
  std::vector<int32_t> types(tokens.size(), 1);
  types[257] = types[258] = 3;
  GgufBuilder b;
  b.set("general.architecture", std::string("qwen2"))
      .set("tokenizer.ggml.model", std::string("gpt2"))
      .set("tokenizer.ggml.pre", std::string("qwen2"))
      .set("tokenizer.ggml.tokens", tokens)
      .set("tokenizer.ggml.token_type", types)
      .set("tokenizer.ggml.merges", std::vector<std::string>{"h e"})
      .set("tokenizer.ggml.eos_token_id", uint32_t{258});
  return b;
}

GgufBuilder spm_builder() {
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  std::vector<int32_t> types = {2, 3, 3};
  for (int b = 0; b < 256; ++b) {
    char buf[8];
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    tokens.push_back(buf);
    types.push_back(6);
  }
  for (const char* t : {"\xE2\x96\x81", "h", "i", "\xE2\x96\x81h", "\xE2\x96\x81hi"}) {
    tokens.push_back(t);
    types.push_back(1);
  }
  std::vector<float> scores(tokens.size(), 0.0f);
  scores[tokens.size() - 2] = -1;
  scores[tokens.size() - 1] = -2;
  GgufBuilder b;
  b.set("general.architecture", std::string("llama"))
      .set("tokenizer.ggml.model", std::string("llama"))
      .set("tokenizer.ggml.tokens", tokens)
      .set("tokenizer.ggml.scores", scores)
      .set("tokenizer.ggml.token_type", types);
  return b;
}

struct TempFile {
  std::filesystem::path path;
  ~TempFile() { std::filesystem::remove(path); }
};

// Loads the builder's file and returns the error message ("" when it loaded and tokenized).
std::string load_error(const GgufBuilder& b, const std::string& name, std::string* path_out) {
  TempFile f{b.write(name)};
  *path_out = f.path.string();
  try {
    auto tok = make_tokenizer(vocab_from_gguf(*GgufFile::open(f.path)));
    (void)tok;
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(VocabErrors, HandWrittenVocabulariesLoad) {
  std::string path;
  EXPECT_EQ(load_error(bpe_builder(), "bpe-ok", &path), "");
  EXPECT_EQ(load_error(spm_builder(), "spm-ok", &path), "");
}

TEST(VocabErrors, SpmDefaults) {
  TempFile f{spm_builder().write("spm-defaults")};
  const Vocab v = vocab_from_gguf(*GgufFile::open(f.path));
  EXPECT_EQ(v.model, Vocab::Model::Spm);
  EXPECT_TRUE(v.add_bos);  // llama.cpp's default for SentencePiece vocabularies
  EXPECT_FALSE(v.add_eos);
  EXPECT_TRUE(v.add_space_prefix);
  EXPECT_EQ(v.bos, 1);
  EXPECT_EQ(v.eos, 2);
  EXPECT_EQ(v.unk, 0);
  const auto tok = make_tokenizer(v);
  const int32_t hi = v.size() - 1;
  EXPECT_EQ(tok->encode("hi", EncodeOptions{}), (std::vector<int32_t>{1, hi}));
  // '!' has no token of its own: spelled with its byte token.
  EXPECT_EQ(tok->encode("hi!", {.add_bos = false}), (std::vector<int32_t>{hi, 3 + '!'}));
  EXPECT_EQ(tok->decode(tok->encode("hi hi!", EncodeOptions{})), "hi hi!");
}

TEST(VocabErrors, SpmFlagsFromFile) {
  auto b = spm_builder()
               .set("tokenizer.ggml.add_bos_token", false)
               .set("tokenizer.ggml.add_eos_token", true)
               .set("tokenizer.ggml.add_space_prefix", false)
               .set("tokenizer.ggml.padding_token_id", uint32_t{0xFFFFFFFF});
  TempFile f{b.write("spm-flags")};
  const Vocab v = vocab_from_gguf(*GgufFile::open(f.path));
  EXPECT_FALSE(v.add_bos);
  EXPECT_TRUE(v.add_eos);
  EXPECT_FALSE(v.add_space_prefix);
  EXPECT_EQ(v.pad, -1);
  const auto tok = make_tokenizer(v);
  const int32_t h = 3 + 256 + 1;
  EXPECT_EQ(tok->encode("h", EncodeOptions{}), (std::vector<int32_t>{h, 2}));
}

TEST(VocabErrors, BpeDefaults) {
  TempFile f{bpe_builder().write("bpe-defaults")};
  const Vocab v = vocab_from_gguf(*GgufFile::open(f.path));
  EXPECT_EQ(v.model, Vocab::Model::Bpe);
  EXPECT_FALSE(v.add_bos);
  EXPECT_EQ(v.bos, -1);
  EXPECT_EQ(v.eos, 258);
  EXPECT_EQ(v.eot, 258);  // <|im_end|>, found by its text
  // Tokens 0-255 are the bytes in order, so a byte's id is its value.
  const auto tok = make_tokenizer(v);
  EXPECT_EQ(tok->encode("hehe h", EncodeOptions{}), (std::vector<int32_t>{256, 256, ' ', 'h'}));
}

TEST(VocabErrors, NoTokenizerIsModelNone) {
  TempFile f{bpe_builder().erase("tokenizer.ggml.model").write("none")};
  EXPECT_EQ(vocab_from_gguf(*GgufFile::open(f.path)).model, Vocab::Model::None);
  EXPECT_THROW(make_tokenizer(Vocab{}), Error);
}

TEST(VocabErrors, UnknownTokenizerModel) {
  std::string path;
  const auto msg =
      load_error(bpe_builder().set("tokenizer.ggml.model", std::string("bert")), "model", &path);
  EXPECT_EQ(msg, path +
                     ": unknown tokenizer model \"bert\" in tokenizer.ggml.model (known: "
                     "llama, gpt2, none)");
}

TEST(VocabErrors, BpeWithoutMerges) {
  std::string path;
  const auto msg = load_error(bpe_builder().erase("tokenizer.ggml.merges"), "merges", &path);
  EXPECT_EQ(msg, path + ": BPE vocabulary has no tokenizer.ggml.merges");
}

TEST(VocabErrors, UnknownPreTokenizer) {
  std::string path;
  const auto msg =
      load_error(bpe_builder().set("tokenizer.ggml.pre", std::string("klingon")), "pre", &path);
  EXPECT_EQ(
      msg.rfind(path + ": tokenizer.ggml.pre \"klingon\" is not a known pre-tokenizer (known: "
                       "llama3, llama-bpe, ",
                0),
      0u)
      << msg;
  EXPECT_NE(msg.find(", smollm, "), std::string::npos) << msg;
  EXPECT_EQ(msg.back(), ')');
  // make_tokenizer checks too, for vocabularies built in memory.
  Vocab v = vocab_from_gguf(*GgufFile::open(TempFile{bpe_builder().write("pre2")}.path));
  v.pre = "klingon";
  try {
    make_tokenizer(v);
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_TRUE(
        std::string(e.what()).starts_with("unknown pre-tokenizer \"klingon\" (known: llama3"))
        << e.what();
  }
}

TEST(VocabErrors, InvalidUtf8PromptForBpe) {
  TempFile f{bpe_builder().write("utf8")};
  const auto tok = make_tokenizer(vocab_from_gguf(*GgufFile::open(f.path)));
  try {
    tok->encode("hello \xFFworld", {.add_bos = false});
    FAIL() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "invalid UTF-8 in prompt at byte 6");
  }
}

TEST(VocabErrors, ScoresLengthMismatch) {
  std::string path;
  const auto msg = load_error(spm_builder().set("tokenizer.ggml.scores", std::vector<float>{0, 0}),
                              "scores", &path);
  EXPECT_EQ(msg, path + ": tokenizer.ggml.scores has 2 entries but tokenizer.ggml.tokens has 264");
}

TEST(VocabErrors, TokenTypeLengthMismatch) {
  std::string path;
  const auto msg = load_error(
      spm_builder().set("tokenizer.ggml.token_type", std::vector<int32_t>{1}), "types", &path);
  EXPECT_EQ(msg,
            path + ": tokenizer.ggml.token_type has 1 entries but tokenizer.ggml.tokens has 264");
}

TEST(VocabErrors, BadTokenType) {
  std::vector<int32_t> types(264, 1);
  types[7] = 9;
  std::string path;
  const auto msg =
      load_error(spm_builder().set("tokenizer.ggml.token_type", types), "type9", &path);
  EXPECT_EQ(msg, path + ": tokenizer.ggml.token_type[7] is 9, not a token type (0 to 6)");
}

TEST(VocabErrors, SpecialIdOutOfRange) {
  std::string path;
  const auto msg =
      load_error(spm_builder().set("tokenizer.ggml.eos_token_id", uint32_t{264}), "eos", &path);
  EXPECT_EQ(msg,
            path + ": tokenizer.ggml.eos_token_id is 264, outside the vocabulary of 264 tokens");
}

TEST(VocabErrors, MalformedMerge) {
  std::string path;
  const auto msg =
      load_error(bpe_builder().set("tokenizer.ggml.merges", std::vector<std::string>{"h e", "he"}),
                 "merge", &path);
  EXPECT_EQ(msg, path + ": tokenizer.ggml.merges[1] \"he\" is not two pieces split by a space");
}

TEST(VocabErrors, TokensOfWrongType) {
  std::string path;
  const auto msg = load_error(
      spm_builder().set("tokenizer.ggml.tokens", std::vector<int32_t>{1, 2}), "tokens", &path);
  EXPECT_EQ(msg, path + ": metadata tokenizer.ggml.tokens is i32, expected an array of strings");
}

TEST(VocabErrors, MissingTokens) {
  std::string path;
  const auto msg = load_error(spm_builder().erase("tokenizer.ggml.tokens"), "notokens", &path);
  EXPECT_EQ(msg, path + ": tokenizer.ggml.tokens is missing or empty");
}

TEST(VocabErrors, AddBosWithoutBos) {
  std::string path;
  const auto msg =
      load_error(bpe_builder().set("tokenizer.ggml.add_bos_token", true), "addbos", &path);
  EXPECT_EQ(msg, path + ": tokenizer.ggml.add_bos_token is set but there is no BOS");
}

}  // namespace
}  // namespace reprise
