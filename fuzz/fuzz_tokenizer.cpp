// libFuzzer target: SentencePiece and byte-level BPE tokenizers on arbitrary bytes.
//
// Input layout: byte 0 chooses the tokenizer and options, the rest is the prompt (or, in decode
// mode, a list of little-endian int32 token ids). Tokenizers are built once: SPM from the bundled
// stories260K.gguf, BPE from a small byte-level vocabulary built here (so the target needs no
// fixture outside the repository), plus the shared llama.cpp vocabularies when they are present.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "fuzz_common.h"
#include "model/tokenizer.h"
#include "model/vocab.h"
#include "util/error.h"

namespace {

using reprise::TokenAttr;
using reprise::Tokenizer;
using reprise::Vocab;

std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else if (cp < 0x800) {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    s += static_cast<char>(0xE0 | (cp >> 12));
    s += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// GPT-2's reversible byte -> printable code point map, which byte-level BPE vocabularies use
// for their token texts: printable Latin-1 bytes stand for themselves, the rest are shifted to
// U+0100 upwards in byte order.
std::string byte_piece(int b) {
  const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
  if (printable) return utf8(static_cast<uint32_t>(b));
  int shifted = 0;
  for (int c = 0; c < b; ++c)
    if (!((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || c >= 0xAE)) ++shifted;
  return utf8(0x100 + static_cast<uint32_t>(shifted));
}

// A small but complete byte-level BPE vocabulary: the 256 byte tokens, a few dozen merges (so
// that merging, rank order and multi-byte pieces are exercised) and special tokens of each kind.
Vocab tiny_bpe(const std::string& pre) {
  Vocab v;
  v.model = Vocab::Model::Bpe;
  v.pre = pre;
  for (int b = 0; b < 256; ++b) v.tokens.push_back(byte_piece(b));
  const std::string sp = byte_piece(' '), nl = byte_piece('\n');
  const std::vector<std::pair<std::string, std::string>> merges = {
      {sp, "t"},
      {"h", "e"},
      {sp + "t", "he"},
      {"i", "n"},
      {sp, "a"},
      {"e", "r"},
      {"o", "n"},
      {sp, "s"},
      {"l", "l"},
      {sp, "w"},
      {sp, sp},
      {nl, nl},
      {"1", "2"},
      {"12", "3"},
      {"in", "g"},
      {sp, "the"},
      {"e", "d"},
      {sp + sp, sp},
      {"a", "n"},
      {"an", "d"},
      {sp + "a", "nd"},
      {"o", "u"},
      {"r", "e"},
      {sp, "H"},
      {sp + "H", "e"},
      {"l", "o"},
      {sp + "He", "llo"},
      {"l", "lo"},
      {"w", "or"},
      {"o", "r"},
      {byte_piece(0xC3), byte_piece(0xA9)},
      {byte_piece(0xE4), byte_piece(0xB8)},
  };
  for (const auto& [a, b] : merges) {
    v.merges.push_back(a + " " + b);
    v.tokens.push_back(a + b);
  }
  v.attrs.assign(v.tokens.size(), TokenAttr::Normal);
  auto special = [&](const std::string& text, TokenAttr attr) {
    v.tokens.push_back(text);
    v.attrs.push_back(attr);
    return static_cast<int32_t>(v.tokens.size() - 1);
  };
  v.eos = special("<|endoftext|>", TokenAttr::Control);
  v.bos = special("<|begin_of_text|>", TokenAttr::Control);
  special("<|im_start|>", TokenAttr::Control);
  v.eot = special("<|im_end|>", TokenAttr::Control);
  special("<tool>", TokenAttr::UserDefined);
  special("<unused>", TokenAttr::Unused);
  v.add_bos = pre == "llama3";
  reprise::check_vocab(v, "fuzz tiny BPE vocabulary");
  return v;
}

bool env_flag(const char* name) {
  const char* v = std::getenv(name);
  return v && *v && std::string_view(v) != "0";
}

std::unique_ptr<Tokenizer> from_gguf(const std::filesystem::path& path) {
  const auto gguf = reprise::GgufFile::open(path);
  return reprise::make_tokenizer(reprise::vocab_from_gguf(*gguf));
}

std::vector<std::unique_ptr<Tokenizer>> build_tokenizers() {
  std::vector<std::unique_ptr<Tokenizer>> toks;
  try {
    toks.push_back(from_gguf(reprise::fuzz::source_dir() / "models/stories260K.gguf"));
    toks.push_back(reprise::make_tokenizer(tiny_bpe("qwen2")));
    toks.push_back(reprise::make_tokenizer(tiny_bpe("llama3")));
    toks.push_back(reprise::make_tokenizer(tiny_bpe("gpt2")));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: cannot build the tokenizers: %s\n", e.what());
    std::abort();
  }
  // Real vocabularies (100k+ tokens, thousands of merges) from the shared fixtures, on request:
  // building them takes ~20 s under ASan, too long for CI's short runs.
  if (!env_flag("FUZZ_SHARED_VOCABS")) return toks;
  const char* shared = std::getenv("REPRISE_SHARED_DIR");
  const std::filesystem::path dir = shared ? shared : REPRISE_SHARED_DIR;
  for (const char* name :
       {"ggml-vocab-qwen2.gguf", "ggml-vocab-llama-bpe.gguf", "ggml-vocab-llama-spm.gguf"}) {
    const auto path = dir / "fixtures/vocab" / name;
    if (std::filesystem::exists(path)) toks.push_back(from_gguf(path));
  }
  return toks;
}

std::string spm_expected(std::string_view text) {
  static constexpr std::string_view kSpace = "\xE2\x96\x81";
  std::string out;
  for (size_t i = 0; i < text.size();) {
    if (text.substr(i, kSpace.size()) == kSpace) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += text[i++];
    }
  }
  return out;
}

[[noreturn]] void mismatch(const char* what, std::string_view text, const std::string& got) {
  std::fprintf(stderr, "fuzz: %s: %zu input bytes decode to %zu bytes\n", what, text.size(),
               got.size());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto toks = build_tokenizers();
  if (size == 0) return 0;
  const uint8_t mode = data[0];
  const Tokenizer& tok = *toks[(mode & 7) % toks.size()];
  const bool is_spm = tok.vocab().model == Vocab::Model::Spm;
  const reprise::EncodeOptions opts{.add_bos = (mode & 8) != 0, .parse_special = (mode & 16) != 0};
  const auto text = reprise::fuzz::as_text(data + 1, size - 1);
  try {
    if (mode & 32) {
      // Decode mode: arbitrary ids, in range or not, must give bytes or a typed error.
      std::vector<int32_t> ids(text.size() / 4);
      if (!ids.empty()) std::memcpy(ids.data(), text.data(), ids.size() * 4);
      // Fold most ids into the vocabulary so decoding is exercised, keep a few wild ones.
      for (int32_t& id : ids)
        if ((mode & 64) == 0)
          id = static_cast<int32_t>(static_cast<uint32_t>(id) % (tok.vocab().size() + 2));
      (void)tok.decode(ids);
      for (int32_t id : ids) (void)tok.token_to_piece(id);
      return 0;
    }
    const std::vector<int32_t> ids = tok.encode(text, opts);
    for (int32_t id : ids)
      if (id < 0 || id >= tok.vocab().size()) {
        std::fprintf(stderr, "fuzz: encode produced id %d outside the vocabulary\n", id);
        std::abort();
      }
    const std::string back = tok.decode(ids);
    // Without special-token parsing every byte of the prompt is plain text, so decoding must give
    // it back exactly (SPM falls back to byte tokens; BPE has a token per byte). The tiny BPE
    // vocabulary has a user-defined token, which is matched (and decoded) as its own text too.
    // SentencePiece writes spaces as U+2581 and decodes every U+2581 to a space, so a literal
    // U+2581 in the prompt comes back as a space (as in SentencePiece and llama.cpp).
    if (!opts.parse_special) {
      if (is_spm) {
        if (back != spm_expected(text)) mismatch("SPM round trip", text, back);
      } else if (back != text) {
        mismatch("BPE round trip", text, back);
      }
    }
  } catch (const reprise::Error&) {
    // e.g. a BPE prompt that is not valid UTF-8.
  } catch (const std::exception& e) {
    reprise::fuzz::untyped_exception(e);
  }
  return 0;
}
