// Regression tests for inputs found by the fuzz targets (fuzz/, docs/hardening.md). Each test
// names the target and the finding; the input is the minimised one, written out as a literal.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "model/tokenizer.h"
#include "model/vocab.h"
#include "support/test_support.h"

namespace reprise {
namespace {

const Tokenizer& stories_tokenizer() {
  static const std::unique_ptr<Tokenizer> tok = [] {
    const auto gguf = GgufFile::open(test::source_dir() / "models/stories260K.gguf");
    return make_tokenizer(vocab_from_gguf(*gguf));
  }();
  return *tok;
}

// fuzz_tokenizer, SPM round trip. A lead byte of a multi-byte UTF-8 character that is cut short
// right before a space: encode() first writes the space as U+2581 (E2 96 81) and only then splits
// the text into characters by lead byte, so the cut-short character swallows E2 of the space
// marker. Byte fallback then emits <0xE1><0x9E><0xE2><0x96><0x81>, and decode() gives back the
// raw bytes of U+2581 instead of the space: "\xE1\x9E b" decoded to "\xE1\x9E\xE2\x96\x81b".
// (Found with the llama-spm vocabulary; stories260K shows the same.) The ids are what llama.cpp
// produces, so encode() keeps them; decode() now restores spaces over whole runs of byte tokens.
TEST(Regressions, SpmTruncatedUtf8BeforeSpaceRoundTrips) {
  const Tokenizer& tok = stories_tokenizer();
  const EncodeOptions plain{.add_bos = false, .parse_special = false};
  for (const std::string text : {"\xE1\x9E b", "a\xE1\x9E b", "\xF0\x9F x y", "\xC3 z"}) {
    const std::vector<int32_t> ids = tok.encode(text, plain);
    EXPECT_EQ(tok.decode(ids), text) << "input bytes: " << testing::PrintToString(text);
  }
  // The second face of the same cause: a literal U+2581 split across two characters after broken
  // lead bytes comes back as a space, like every other U+2581 SentencePiece decodes.
  EXPECT_EQ(tok.decode(tok.encode("\xFF\xFF\xFF\xE2\x96\x81", plain)), "\xFF\xFF\xFF ");
}

}  // namespace
}  // namespace reprise
