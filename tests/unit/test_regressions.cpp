// Regression tests for inputs found by the fuzz targets (fuzz/, docs/hardening.md). Each test
// names the target and the finding; the input is the minimised one, written out as a literal.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "engine/layer_path.h"
#include "format/gguf.h"
#include "model/hf_tokenizer.h"
#include "model/tokenizer.h"
#include "model/vocab.h"
#include "support/gguf_builder.h"
#include "support/test_support.h"
#include "util/error.h"

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

// fuzz_hf_tokenizer (one-hour run, 2026-11-27). A merge in the array form with an empty piece,
// ["", "o"], became " o"; turning it back into a token then searched for the separating space
// from position 1, found none, and std::string::erase threw std::out_of_range past the
// FormatError handlers. Such merges (and pieces with a space, which "left right" cannot hold)
// are now refused by name.
TEST(Regressions, HfMergeWithAnEmptyPieceIsAFormatError) {
  for (const char* merge : {R"(["", "o"])", R"(["o", ""])", R"(["a b", "o"])"}) {
    const std::string json =
        std::string(R"({"model": {"type": "BPE", "byte_fallback": true, "vocab": {"o": 0, "a": 1},
                                             "merges": [["a", "o"], )") +
        merge + "]}}";
    try {
      vocab_from_hf_json(json, "", "", "/x/tokenizer.json");
      ADD_FAILURE() << "expected a FormatError for " << merge;
    } catch (const FormatError& e) {
      EXPECT_CONTAINS(e.what(), "/x/tokenizer.json: model.merges[1] ");
      EXPECT_CONTAINS(e.what(), "has an empty piece or a piece with a space");
    }
  }
}

// fuzz_layer_path (one-hour run, 2026-11-27). "repeat:0:225:22" on a 256-layer model expanded to
// 4,981 positions: the repeat shorthand skipped the 4,096-position limit that the explicit list
// enforces, so the path's own canonical form did not parse back.
TEST(Regressions, RepeatShorthandObeysThePathLengthLimit) {
  try {
    parse_layer_path("repeat:0:225:22", 256);
    ADD_FAILURE() << "expected an Error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "path longer than 4096 positions in 'repeat:0:225:22'");
  }
  // Exactly at the limit: 256 + 15 * 256 = 4096 positions, and the canonical form parses back.
  const LayerPath longest = parse_layer_path("repeat:0:256:16", 256);
  EXPECT_EQ(longest.size(), 4096u);
  EXPECT_EQ(parse_layer_path(longest.canonical(), 256), longest);
}

// fuzz_gguf (one-hour run, 2026-11-27, after 57 minutes). A tensor whose dimensions were
// [4, 0, 2^40, 2^40]: the absurd-dimension check multiplied the dimensions as it read them, the 0
// made the product 0, and the two 2^40 passed; the view then had "no elements", but rows()
// multiplied 2^40 * 2^40 (UBSan: signed overflow in TensorView::rows). Zeros are now skipped in
// that product (format/tensor_view.h, ShapeLimit), for GGUF and safetensors alike.
TEST(Regressions, GgufZeroDimensionDoesNotHideAbsurdOnes) {
  test::GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.tensor("w", /*F32*/ 0, {4, 0, uint64_t{1} << 40, uint64_t{1} << 40}, {});
  const auto path = test::write_temp_file("zero_dim.gguf", b.build());
  try {
    GgufFile::open(path);
    ADD_FAILURE() << "expected a FormatError";
  } catch (const FormatError& e) {
    EXPECT_CONTAINS(e.what(), "tensor w has absurd dimension 1099511627776");
  }
}

}  // namespace
}  // namespace reprise
