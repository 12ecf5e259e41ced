// GGUF reader: real files parse; every kind of malformed file ends in a one-line error that
// names the file and the field (and, through the CLI, exit code 2).
#include <gtest/gtest.h>

#include <tuple>

#include "format/gguf.h"
#include "model/model.h"
#include "support/gguf_builder.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

using test::GgufBuilder;

TEST(Gguf, ReadsTheDefaultModel) {
  auto g = GgufFile::open(test::default_model());
  EXPECT_EQ(g->version(), 3u);
  EXPECT_EQ(g->require_string("general.architecture"), "llama");
  EXPECT_EQ(g->require_int("llama.block_count"), 5);
  EXPECT_EQ(g->require_int("llama.embedding_length"), 64);
  const GgufValue* tokens = g->find("tokenizer.ggml.tokens");
  ASSERT_NE(tokens, nullptr);
  EXPECT_EQ(tokens->elem, GgufType::STRING);
  EXPECT_EQ(tokens->strings.size(), 512u);
  EXPECT_EQ(tokens->strings[1], "<s>");
  const TensorView* emb = g->tensor("token_embd.weight");
  ASSERT_NE(emb, nullptr);
  EXPECT_EQ(emb->shape, (std::vector<int64_t>{512, 64}));  // row-major: [vocab, embd]
  EXPECT_EQ(emb->type, TensorType::F32);
  EXPECT_EQ(emb->data.size(), 512u * 64 * 4);
}

TEST(Gguf, EveryMetadataTypeRoundTrips) {
  GgufBuilder b;
  b.kv_string("s", "hello");
  b.kv_u32("u", 7);
  b.kv_f32("f", 0.5f);
  b.kv_string_array("arr", {"a", "bc"});
  std::vector<uint8_t> raw;
  auto key = [&](const std::string& k, uint32_t type) {
    GgufBuilder::str(raw, k);
    GgufBuilder::put(raw, type);
  };
  key("i8", 1), GgufBuilder::put(raw, int8_t{-3});
  key("u16", 2), GgufBuilder::put(raw, uint16_t{65535});
  key("i16", 3), GgufBuilder::put(raw, int16_t{-300});
  key("i32", 5), GgufBuilder::put(raw, int32_t{-70000});
  key("b", 7), GgufBuilder::put(raw, uint8_t{1});
  key("u64", 10), GgufBuilder::put(raw, uint64_t{1} << 40);
  key("i64", 11), GgufBuilder::put(raw, int64_t{-5});
  key("f64", 12), GgufBuilder::put(raw, 2.25);
  key("u8", 0), GgufBuilder::put(raw, uint8_t{200});
  key("ints", 9), GgufBuilder::put(raw, uint32_t{5}), GgufBuilder::put(raw, uint64_t{3});
  for (int32_t v : {1, -2, 3}) GgufBuilder::put(raw, v);
  key("nested", 9), GgufBuilder::put(raw, uint32_t{9}), GgufBuilder::put(raw, uint64_t{1});
  GgufBuilder::put(raw, uint32_t{6}), GgufBuilder::put(raw, uint64_t{2});
  GgufBuilder::put(raw, 1.5f), GgufBuilder::put(raw, -1.0f);
  b.kv_raw(raw, 11);
  b.kv_u32("general.alignment", 64);
  b.alignment = 64;
  b.tensor_f32("t", {4}, {1, 2, 3, 4});
  auto g = GgufFile::open(test::write_temp_file("types.gguf", b.build()));
  EXPECT_EQ(g->alignment(), 64u);
  EXPECT_EQ(g->data_offset() % 64, 0u);
  EXPECT_EQ(*g->get_string("s"), "hello");
  EXPECT_EQ(*g->get_int("u"), 7);
  EXPECT_EQ(*g->get_float("f"), 0.5);
  EXPECT_EQ(g->find("arr")->strings, (std::vector<std::string>{"a", "bc"}));
  EXPECT_EQ(*g->get_int("i8"), -3);
  EXPECT_EQ(*g->get_int("u16"), 65535);
  EXPECT_EQ(*g->get_int("i16"), -300);
  EXPECT_EQ(*g->get_int("i32"), -70000);
  EXPECT_EQ(*g->get_bool("b"), true);
  EXPECT_EQ(*g->get_int("u64"), int64_t{1} << 40);
  EXPECT_EQ(*g->get_int("i64"), -5);
  EXPECT_EQ(*g->get_float("f64"), 2.25);
  EXPECT_EQ(*g->get_int("u8"), 200);
  EXPECT_EQ(g->find("ints")->ints, (std::vector<int64_t>{1, -2, 3}));
  ASSERT_EQ(g->find("nested")->arrays.size(), 1u);
  EXPECT_EQ(g->find("nested")->arrays[0].floats, (std::vector<double>{1.5, -1.0}));
  const TensorView* t = g->tensor("t");
  ASSERT_NE(t, nullptr);
  float v[4];
  std::memcpy(v, t->data.data(), 16);
  EXPECT_EQ(v[3], 4.0f);
  EXPECT_THROW(g->get_int("s"), FormatError);
}

TEST(Gguf, Version2IsAccepted) {
  GgufBuilder b;
  b.version = 2;
  b.kv_string("general.architecture", "llama");
  auto g = GgufFile::open(test::write_temp_file("v2.gguf", b.build()));
  EXPECT_EQ(g->version(), 2u);
}

// Loads bytes as a model and returns the error message ("" if none).
std::string load_error(const std::string& name, const std::vector<uint8_t>& bytes) {
  auto path = test::write_temp_file(name, bytes);
  try {
    Model::load(path);
  } catch (const Error& e) {
    std::string msg = e.what();
    EXPECT_EQ(msg.rfind(path.string(), 0), 0u) << "message must start with the file: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << "one line: " << msg;
    return msg;
  }
  return "";
}

std::vector<uint8_t> one_tensor_file(uint32_t type, std::optional<uint64_t> offset = {}) {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.tensor("blk.0.attn_q.weight", type, {32, 2}, std::vector<uint8_t>(256, 0), offset);
  return b.build();
}

TEST(GgufErrors, WrongMagic) {
  auto bytes = test::tiny_llama_gguf();
  bytes[0] = 'X';
  EXPECT_CONTAINS(load_error("magic.gguf", bytes), "wrong magic");
}

TEST(GgufErrors, UnsupportedVersion) {
  GgufBuilder b;
  b.version = 1;
  EXPECT_CONTAINS(load_error("v1.gguf", b.build()), "unsupported GGUF version 1");
  b.version = 4;
  EXPECT_CONTAINS(load_error("v4.gguf", b.build()), "unsupported GGUF version 4");
}

TEST(GgufErrors, TruncatedHeader) {
  auto bytes = test::tiny_llama_gguf();
  bytes.resize(12);
  EXPECT_CONTAINS(load_error("trunc_header.gguf", bytes), "truncated: tensor count");
  bytes = test::tiny_llama_gguf();
  bytes.resize(150);  // inside the metadata
  EXPECT_CONTAINS(load_error("trunc_meta.gguf", bytes), "truncated: metadata");
}

TEST(GgufErrors, TruncatedTensorData) {
  auto bytes = test::tiny_llama_gguf();
  bytes.resize(bytes.size() - 100);
  EXPECT_CONTAINS(load_error("trunc_data.gguf", bytes), "lies past the end of the file");
}

TEST(GgufErrors, TensorOffsetPastEnd) {
  EXPECT_CONTAINS(load_error("offset.gguf", one_tensor_file(0, uint64_t{1} << 40)),
                  "tensor blk.0.attn_q.weight data [1099511627776");
}

TEST(GgufErrors, AbsurdTensorCount) {
  GgufBuilder b;
  b.tensor_count_override = uint64_t{1} << 60;
  EXPECT_CONTAINS(load_error("count.gguf", b.build()),
                  "tensor count is 1152921504606846976, more than");
  GgufBuilder c;
  c.kv_count_override = uint64_t{1} << 62;
  EXPECT_CONTAINS(load_error("kvcount.gguf", c.build()), "metadata count is");
}

TEST(GgufErrors, AbsurdStringLength) {
  GgufBuilder b;
  std::vector<uint8_t> raw;
  GgufBuilder::str(raw, "general.name");
  GgufBuilder::put(raw, uint32_t{8});
  GgufBuilder::put(raw, uint64_t{1} << 40);  // a 2^40-byte string in a tiny file
  b.kv_raw(raw);
  EXPECT_CONTAINS(load_error("string.gguf", b.build()),
                  "truncated: metadata general.name needs 1099511627776 bytes");
  GgufBuilder k;
  std::vector<uint8_t> key;
  GgufBuilder::put(key, uint64_t{1} << 40);
  key.resize(key.size() + 32, 0);  // enough bytes that the entry count itself is plausible
  k.kv_raw(key);
  EXPECT_CONTAINS(load_error("key.gguf", k.build()), "metadata key #0 has length 1099511627776");
}

TEST(GgufErrors, AbsurdArrayLength) {
  GgufBuilder b;
  std::vector<uint8_t> raw;
  GgufBuilder::str(raw, "tokenizer.ggml.tokens");
  GgufBuilder::put(raw, uint32_t{9});
  GgufBuilder::put(raw, uint32_t{8});
  GgufBuilder::put(raw, uint64_t{1} << 60);
  b.kv_raw(raw);
  EXPECT_CONTAINS(load_error("array.gguf", b.build()),
                  "metadata tokenizer.ggml.tokens array length is 1152921504606846976");
}

// Nested arrays cost ~14x their file bytes once parsed, so a file that passes every size check can
// still ask for far more memory than it is big; the reader refuses before allocating.
TEST(GgufErrors, MetadataThatWouldNotFitInMemoryIsRefused) {
  GgufBuilder b;
  std::vector<uint8_t> raw;
  GgufBuilder::str(raw, "general.blob");
  GgufBuilder::put(raw, uint32_t{9});  // array
  GgufBuilder::put(raw, uint32_t{9});  // of arrays
  const uint64_t n = 4'000'000;        // 48 MB in the file, ~0.7 GB once widened
  GgufBuilder::put(raw, n);
  raw.reserve(raw.size() + n * 12);
  for (uint64_t k = 0; k < n; ++k) {
    GgufBuilder::put(raw, uint32_t{0});  // empty u8 array
    GgufBuilder::put(raw, uint64_t{0});
  }
  b.kv_raw(raw);
  EXPECT_CONTAINS(load_error("blob.gguf", b.build()),
                  "metadata general.blob: metadata would need more than 512 MiB of memory");
}

TEST(GgufErrors, MisalignedData) {
  EXPECT_CONTAINS(load_error("align.gguf", one_tensor_file(0, 3)),
                  "tensor blk.0.attn_q.weight data offset 3 is not aligned to 32 bytes");
}

TEST(GgufErrors, UnknownTensorType) {
  EXPECT_CONTAINS(load_error("type.gguf", one_tensor_file(99)),
                  "tensor blk.0.attn_q.weight has unknown tensor type 99");
}

TEST(GgufErrors, UnknownArchitecture) {
  GgufBuilder b;
  b.kv_string("general.architecture", "gptx");
  EXPECT_CONTAINS(load_error("arch.gguf", b.build()),
                  "unknown architecture 'gptx' (supported: llama, qwen2, qwen3, qwen3moe, phi3, "
                  "gemma2, gemma3, smollm3, qwen35)");
}

TEST(GgufErrors, MissingRequiredMetadata) {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  EXPECT_CONTAINS(load_error("meta.gguf", b.build()),
                  "missing required metadata llama.embedding_length");
  GgufBuilder none;
  EXPECT_CONTAINS(load_error("noarch.gguf", none.build()),
                  "missing required metadata general.architecture");
}

TEST(GgufErrors, ShapeMismatchNamesTheTensor) {
  GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  for (auto [k, v] : {std::pair{"embedding_length", 8},
                      {"block_count", 1},
                      {"feed_forward_length", 16},
                      {"attention.head_count", 2}})
    b.kv_u32(std::string("llama.") + k, v);
  b.tensor_f32("token_embd.weight", {4, 16}, std::vector<float>(64));
  EXPECT_CONTAINS(load_error("shape.gguf", b.build()),
                  "tensor token_embd.weight has shape [16, 4], expected [16, 8]");
}

// A type ggml defines but reprise has no kernels for: one line naming the tensor and the type.
TEST(GgufErrors, UncomputableTensorTypeNamesTensorAndType) {
  for (auto [id, name, block_bytes] :
       {std::tuple{16u, "IQ2_XXS", 66u}, {9u, "Q8_1", 36u * 8}, {39u, "MXFP4", 17u * 8}}) {
    GgufBuilder b;
    b.kv_string("general.architecture", "llama");
    for (auto [k, v] : {std::pair{"embedding_length", 256},
                        {"block_count", 1},
                        {"feed_forward_length", 256},
                        {"attention.head_count", 4}})
      b.kv_u32(std::string("llama.") + k, v);
    b.tensor_f32("token_embd.weight", {256, 4}, std::vector<float>(1024));
    b.tensor_f32("output_norm.weight", {256}, std::vector<float>(256));
    b.tensor_f32("blk.0.attn_norm.weight", {256}, std::vector<float>(256));
    // 256 x 256 elements: one 256-block (or eight 32-blocks) per row.
    b.tensor("blk.0.attn_q.weight", id, {256, 256}, std::vector<uint8_t>(256 * block_bytes, 0));
    EXPECT_CONTAINS(load_error(std::string(name) + ".gguf", b.build()),
                    std::string("tensor blk.0.attn_q.weight has type ") + name +
                        ", which reprise cannot compute");
  }
}

TEST(GgufErrors, EmptyFile) {
  EXPECT_CONTAINS(load_error("empty.gguf", {}), "truncated: magic");
}

TEST(GgufErrors, CliExitsWithCode2AndOneLine) {
  auto bytes = test::tiny_llama_gguf();
  bytes.resize(bytes.size() / 2);
  auto path = test::write_temp_file("cli_trunc.gguf", bytes);
  auto r = test::run_cli("info '" + path.string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("reprise: error: " + path.string() + ": ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

}  // namespace
}  // namespace reprise
