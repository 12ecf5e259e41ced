#include "format/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

// A fresh directory removed with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "reprise-st-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }
  fs::path operator/(const std::string& name) const { return path_ / name; }

 private:
  fs::path path_;
};

void write_bytes(const fs::path& p, const std::string& bytes) {
  std::ofstream f(p, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  ASSERT_TRUE(f.good()) << p;
}

std::string u64_le(uint64_t v) {
  std::string s(8, '\0');
  for (int k = 0; k < 8; ++k) s[k] = static_cast<char>((v >> (8 * k)) & 0xff);
  return s;
}

// A safetensors file: length prefix, header text as given, then `data`.
std::string safetensors_bytes(const std::string& header, const std::string& data) {
  return u64_le(header.size()) + header + data;
}

std::string floats(std::initializer_list<float> values) {
  std::string s(values.size() * sizeof(float), '\0');
  std::memcpy(s.data(), std::data(values), s.size());
  return s;
}

// The message of the FormatError `f` throws, or a note that it threw something else / nothing.
std::string format_error(const std::function<void()>& f) {
  try {
    f();
  } catch (const FormatError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("other exception: ") + e.what();
  }
  return "no exception";
}

std::string open_error(const fs::path& p) {
  return format_error([&] { SafetensorsModel::open(p); });
}

// Writes one file holding `header` (and `data`) and returns the error opening it gives.
std::string error_for(const TempDir& dir, const std::string& header, const std::string& data) {
  const fs::path p = dir / "model.safetensors";
  write_bytes(p, safetensors_bytes(header, data));
  return open_error(p);
}

fs::path hf_fixture(const std::string& name) {
  return reprise::test::shared_dir() / "fixtures" / "hf" / name;
}

std::vector<float> as_floats(const TensorView& t) {
  std::vector<float> v(t.data.size() / sizeof(float));
  std::memcpy(v.data(), t.data.data(), v.size() * sizeof(float));
  return v;
}

// ---- the shared Hugging Face fixtures ----

TEST(SafetensorsFixture, LlamaTinyF32Directory) {
  if (!reprise::test::have_shared()) GTEST_SKIP() << "shared fixtures not present";
  const fs::path dir = hf_fixture("llama-tiny-f32");
  auto m = SafetensorsModel::open(dir);

  EXPECT_EQ(m->dir(), dir);
  ASSERT_EQ(m->files().size(), 1u);
  EXPECT_EQ(m->files()[0], (dir / "model.safetensors").string());
  // embed, lm_head, final norm + 4 layers x (2 norms, 4 attention, 3 MLP projections).
  EXPECT_EQ(m->tensors().size(), 3u + 4u * 9u);
  // File order: lm_head.weight has data_offsets [0, ...].
  EXPECT_EQ(m->tensors().front().name, "lm_head.weight");

  struct Expect {
    const char* name;
    std::vector<int64_t> shape;
  };
  const Expect expected[] = {
      {"model.embed_tokens.weight", {512, 256}},
      {"lm_head.weight", {512, 256}},
      {"model.norm.weight", {256}},
      {"model.layers.0.self_attn.q_proj.weight", {256, 256}},
      {"model.layers.0.self_attn.k_proj.weight", {128, 256}},
      {"model.layers.3.self_attn.v_proj.weight", {128, 256}},
      {"model.layers.2.mlp.down_proj.weight", {256, 512}},
      {"model.layers.1.mlp.gate_proj.weight", {512, 256}},
  };
  for (const auto& e : expected) {
    const TensorView* t = m->tensor(e.name);
    ASSERT_NE(t, nullptr) << e.name;
    EXPECT_EQ(t->name, e.name);
    EXPECT_EQ(t->type, TensorType::F32) << e.name;
    EXPECT_EQ(t->shape, e.shape) << e.name;
    EXPECT_EQ(t->data.size(), static_cast<size_t>(t->elements()) * 4) << e.name;
  }
  EXPECT_EQ(m->tensor("model.layers.4.mlp.up_proj.weight"), nullptr);
  EXPECT_EQ(m->tensor(""), nullptr);

  EXPECT_EQ(m->config().at("hidden_size"), 256);
  EXPECT_EQ(m->config().at("architectures")[0], "LlamaForCausalLM");
}

TEST(SafetensorsFixture, WeightsMatchTheGguf) {
  if (!reprise::test::have_shared()) GTEST_SKIP() << "shared fixtures not present";
  auto m = SafetensorsModel::open(hf_fixture("llama-tiny-f32"));
  auto g = GgufFile::open(reprise::test::shared_dir() / "fixtures" / "llama-tiny-f32.gguf");

  auto same_bytes = [&](const char* hf, const char* gguf) {
    const TensorView* a = m->tensor(hf);
    const TensorView* b = g->tensor(gguf);
    ASSERT_NE(a, nullptr) << hf;
    ASSERT_NE(b, nullptr) << gguf;
    EXPECT_EQ(a->shape, b->shape) << hf;
    ASSERT_EQ(a->data.size(), b->data.size()) << hf;
    EXPECT_EQ(std::memcmp(a->data.data(), b->data.data(), a->data.size()), 0) << hf;
  };
  same_bytes("model.norm.weight", "output_norm.weight");
  same_bytes("model.layers.0.input_layernorm.weight", "blk.0.attn_norm.weight");
  same_bytes("model.embed_tokens.weight", "token_embd.weight");
  same_bytes("model.layers.3.mlp.down_proj.weight", "blk.3.ffn_down.weight");

  // Q rows are permuted between the layouts (rotate-half vs interleaved pairs): GGUF row
  // h*d + 2j + k is HF row h*d + k*d/2 + j. Checking it proves the row-major shape reading.
  const TensorView* q_hf = m->tensor("model.layers.1.self_attn.q_proj.weight");
  const TensorView* q_gg = g->tensor("blk.1.attn_q.weight");
  ASSERT_NE(q_hf, nullptr);
  ASSERT_NE(q_gg, nullptr);
  const int64_t d = 64, heads = 4;
  ASSERT_EQ(q_hf->rows(), heads * d);
  for (int64_t h = 0; h < heads; ++h)
    for (int64_t j = 0; j < d / 2; ++j)
      for (int64_t k = 0; k < 2; ++k) {
        const int64_t row_gg = h * d + 2 * j + k, row_hf = h * d + k * (d / 2) + j;
        ASSERT_EQ(std::memcmp(q_gg->row(row_gg), q_hf->row(row_hf), q_hf->row_stride()), 0)
            << "gguf row " << row_gg << " vs hf row " << row_hf;
      }
}

TEST(SafetensorsFixture, Bf16DirectoryRoundsTheF32Weights) {
  if (!reprise::test::have_shared()) GTEST_SKIP() << "shared fixtures not present";
  auto f32 = SafetensorsModel::open(hf_fixture("llama-tiny-f32"));
  auto bf16 = SafetensorsModel::open(hf_fixture("llama-tiny-bf16"));
  ASSERT_EQ(bf16->tensors().size(), f32->tensors().size());
  for (const auto& t : bf16->tensors()) {
    EXPECT_EQ(t.type, TensorType::BF16) << t.name;
    EXPECT_EQ(t.data.size(), static_cast<size_t>(t.elements()) * 2) << t.name;
  }
  const TensorView* a = f32->tensor("model.norm.weight");
  const TensorView* b = bf16->tensor("model.norm.weight");
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->shape, std::vector<int64_t>{256});
  const auto values = as_floats(*a);
  for (size_t i = 0; i < values.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &values[i], 4);
    const auto rounded = static_cast<uint16_t>((u + 0x7fff + ((u >> 16) & 1)) >> 16);  // RNE
    uint16_t stored;
    std::memcpy(&stored, b->data.data() + 2 * i, 2);
    ASSERT_EQ(stored, rounded) << "element " << i;
  }
}

TEST(SafetensorsFixture, OpensASingleFile) {
  if (!reprise::test::have_shared()) GTEST_SKIP() << "shared fixtures not present";
  const fs::path dir = hf_fixture("stories260K-f32");
  auto m = SafetensorsModel::open(dir / "model.safetensors");
  EXPECT_EQ(m->dir(), dir);
  EXPECT_EQ(m->config().at("hidden_size"), 64);
  const TensorView* t = m->tensor("model.layers.4.self_attn.k_proj.weight");
  ASSERT_NE(t, nullptr);
  EXPECT_EQ(t->shape, (std::vector<int64_t>{32, 64}));
}

// ---- synthetic files ----

TEST(Safetensors, ReadsValuesRelativeToTheDataSection) {
  TempDir dir;
  const std::string header = R"({"__metadata__":{"format":"pt"},)"
                             R"("b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                             R"("a":{"dtype":"F32","shape":[1,3],"data_offsets":[8,20]}})";
  write_bytes(dir / "model.safetensors",
              safetensors_bytes(header, floats({1.5f, -2.0f, 3.0f, 4.25f, -5.5f})));
  auto m = SafetensorsModel::open(dir.path());
  ASSERT_EQ(m->tensors().size(), 2u);
  EXPECT_EQ(m->tensors()[0].name, "b");  // by data offset, not by name
  EXPECT_EQ(m->tensors()[1].name, "a");
  EXPECT_EQ(as_floats(*m->tensor("b")), (std::vector<float>{1.5f, -2.0f}));
  const TensorView* a = m->tensor("a");
  EXPECT_EQ(a->shape, (std::vector<int64_t>{1, 3}));
  EXPECT_EQ(as_floats(*a), (std::vector<float>{3.0f, 4.25f, -5.5f}));
  EXPECT_TRUE(m->config().is_object());
  EXPECT_TRUE(m->config().empty());
}

TEST(Safetensors, AcceptsF16Bf16AndEmptyTensors) {
  TempDir dir;
  const std::string header = R"({"h":{"dtype":"F16","shape":[2,2],"data_offsets":[0,8]},)"
                             R"("g":{"dtype":"BF16","shape":[3],"data_offsets":[8,14]},)"
                             R"("z":{"dtype":"F32","shape":[0,7],"data_offsets":[14,14]},)"
                             R"("s":{"dtype":"F32","shape":[],"data_offsets":[14,18]}})";
  write_bytes(dir / "model.safetensors", safetensors_bytes(header, std::string(18, '\x01')));
  auto m = SafetensorsModel::open(dir.path());
  EXPECT_EQ(m->tensor("h")->type, TensorType::F16);
  EXPECT_EQ(m->tensor("g")->type, TensorType::BF16);
  EXPECT_EQ(m->tensor("z")->elements(), 0);
  EXPECT_EQ(m->tensor("z")->data.size(), 0u);
  EXPECT_EQ(m->tensor("s")->elements(), 1);
}

TEST(Safetensors, HeaderLengthPastTheEnd) {
  TempDir dir;
  const fs::path p = dir / "model.safetensors";
  write_bytes(p, u64_le(1000) + "{}xx");
  EXPECT_EQ(open_error(p), p.string() + ": header length 1000 is longer than the file (12 bytes)");
  write_bytes(p, u64_le(UINT64_MAX) + "{}");
  EXPECT_EQ(open_error(p), p.string() +
                               ": header length 18446744073709551615 is longer than the "
                               "file (10 bytes)");
  write_bytes(p, "abc");
  EXPECT_EQ(open_error(p),
            p.string() + ": truncated: the header length needs 8 bytes, the file has 3");
}

TEST(Safetensors, HeaderIsNotJson) {
  TempDir dir;
  const std::string err = error_for(dir, "{\"a\": nope\n}", "");
  const std::string prefix = (dir / "model.safetensors").string() + ": header is not valid JSON: ";
  EXPECT_EQ(err.substr(0, prefix.size()), prefix) << err;
  EXPECT_NE(err.find("line 1, column 8"), std::string::npos) << err;
  EXPECT_EQ(err.find('\n'), std::string::npos) << err;
}

TEST(Safetensors, HeaderShapeErrors) {
  TempDir dir;
  const std::string file = (dir / "model.safetensors").string() + ": ";
  EXPECT_EQ(error_for(dir, "[1, 2]", ""), file + "header is an array, expected an object");
  EXPECT_EQ(error_for(dir, R"({"__metadata__": 3})", ""),
            file + "__metadata__ is an integer, expected an object");
  EXPECT_EQ(error_for(dir, R"({"w": 3})", ""), file + "tensor w is an integer, expected an object");
  EXPECT_EQ(error_for(dir, R"({"w": {"shape":[1],"data_offsets":[0,4]}})", "abcd"),
            file + "tensor w has no dtype");
  EXPECT_EQ(error_for(dir, R"({"w": {"dtype":7,"shape":[1],"data_offsets":[0,4]}})", "abcd"),
            file + "tensor w: dtype is an integer, expected a string");
  EXPECT_EQ(error_for(dir, R"({"w": {"dtype":"F32","data_offsets":[0,4]}})", "abcd"),
            file + "tensor w has no shape");
  EXPECT_EQ(error_for(dir, R"({"w": {"dtype":"F32","shape":"1","data_offsets":[0,4]}})", "abcd"),
            file + "tensor w: shape is a string, expected an array");
  EXPECT_EQ(error_for(dir, R"({"w": {"dtype":"F32","shape":[1,-3],"data_offsets":[0,4]}})", "abcd"),
            file + "tensor w: dimension 1 is -3, expected a non-negative integer");
  EXPECT_EQ(error_for(dir, R"({"w": {"dtype":"F32","shape":[1.0],"data_offsets":[0,4]}})", "abcd"),
            file + "tensor w: dimension 0 is a float, expected an integer");
  EXPECT_EQ(error_for(dir, R"({"w": {"dtype":"F32","shape":[1]}})", "abcd"),
            file + "tensor w has no data_offsets");
  EXPECT_EQ(error_for(dir, R"({"w": {"dtype":"F32","shape":[1],"data_offsets":[0]}})", "abcd"),
            file + "tensor w: data_offsets is [0], expected an array of two integers");
  EXPECT_EQ(error_for(dir, R"({"w": {"dtype":"F32","shape":[1],"data_offsets":[-4,4]}})", "abcd"),
            file + "tensor w: data_offsets [-4,4] are not two non-negative integers");
  EXPECT_EQ(error_for(dir, R"({"w": {"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", "abcd"),
            file + "tensor w: data_offsets [4, 0] end before they begin");
}

TEST(Safetensors, DataOffsetsPastTheEnd) {
  TempDir dir;
  EXPECT_EQ(error_for(dir, R"({"w": {"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "abcd"),
            (dir / "model.safetensors").string() +
                ": tensor w data [0, 8) lies past the end of the file (data section has 4 bytes)");
  // An end offset near 2^64 must not wrap around in the check.
  EXPECT_EQ(error_for(dir,
                      R"({"w": {"dtype":"U8","shape":[0],)"
                      R"("data_offsets":[18446744073709551615,18446744073709551615]}})",
                      "abcd"),
            (dir / "model.safetensors").string() +
                ": tensor w data [18446744073709551615, 18446744073709551615) lies past the end "
                "of the file (data section has 4 bytes)");
}

TEST(Safetensors, SizeMustMatchShapeAndDtype) {
  TempDir dir;
  const std::string file = (dir / "model.safetensors").string() + ": ";
  EXPECT_EQ(error_for(dir, R"({"w": {"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                      std::string(8, 'x')),
            file + "tensor w: data_offsets [0, 8] hold 8 bytes, but shape [3] of F32 needs 12");
  EXPECT_EQ(error_for(dir, R"({"w": {"dtype":"BF16","shape":[2,2],"data_offsets":[0,4]}})",
                      std::string(8, 'x')),
            file + "tensor w: data_offsets [0, 4] hold 4 bytes, but shape [2, 2] of BF16 needs 8");
  // Checked for dtypes reprise cannot compute with too.
  EXPECT_EQ(error_for(dir, R"({"w": {"dtype":"I64","shape":[1],"data_offsets":[0,4]}})",
                      std::string(8, 'x')),
            file + "tensor w: data_offsets [0, 4] hold 4 bytes, but shape [1] of I64 needs 8");
}

TEST(Safetensors, ShapeProductOverflow) {
  TempDir dir;
  const std::string file = (dir / "model.safetensors").string() + ": ";
  // 2^32 cubed wraps a u64 to 0, which would match an empty data range without the check.
  EXPECT_EQ(error_for(dir,
                      R"({"w": {"dtype":"F32","shape":[4294967296,4294967296,4294967296],)"
                      R"("data_offsets":[0,0]}})",
                      ""),
            file + "tensor w: shape [4294967296,4294967296,4294967296] has too many elements");
  // A zero dimension must not hide absurd ones (the element count is 0, but rows() would
  // overflow); fuzz_gguf found the GGUF twin of this (Regressions.GgufZeroDimension...).
  EXPECT_EQ(error_for(dir,
                      R"({"w": {"dtype":"F32","shape":[0,1099511627776,1099511627776],)"
                      R"("data_offsets":[0,0]}})",
                      ""),
            file + "tensor w: shape [0,1099511627776,1099511627776] has too many elements");
  EXPECT_EQ(error_for(dir,
                      R"({"w": {"dtype":"F32","shape":[18446744073709551615],)"
                      R"("data_offsets":[0,0]}})",
                      ""),
            file + "tensor w has absurd dimension 18446744073709551615");
}

TEST(Safetensors, DuplicateNameInOneHeader) {
  TempDir dir;
  EXPECT_EQ(error_for(dir,
                      R"({"w": {"dtype":"U8","shape":[1],"data_offsets":[0,1]},)"
                      R"("w": {"dtype":"U8","shape":[1],"data_offsets":[1,2]}})",
                      "ab"),
            (dir / "model.safetensors").string() + ": tensor w appears twice");
}

TEST(Safetensors, UnsupportedDtypeFailsOnlyWhenRequested) {
  TempDir dir;
  const fs::path p = dir / "model.safetensors";
  write_bytes(p, safetensors_bytes(R"({"w": {"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                   R"("ids": {"dtype":"I32","shape":[2],"data_offsets":[4,12]},)"
                                   R"("q": {"dtype":"F4","shape":[7],"data_offsets":[12,13]}})",
                                   std::string(13, '\0')));
  auto m = SafetensorsModel::open(p);
  ASSERT_EQ(m->tensors().size(), 1u);
  EXPECT_EQ(m->tensors()[0].name, "w");
  EXPECT_EQ(format_error([&] { m->tensor("ids"); }),
            p.string() +
                ": tensor ids has dtype I32, which reprise cannot use (supported: F32, F16, BF16)");
  EXPECT_EQ(
      format_error([&] { m->tensor("q"); }),
      p.string() + ": tensor q has dtype F4, which reprise cannot use (supported: F32, F16, BF16)");
  EXPECT_EQ(m->tensor("absent"), nullptr);
}

TEST(Safetensors, NamesInMessagesStayOnOneLine) {
  TempDir dir;
  EXPECT_EQ(
      error_for(dir, R"({"a\nb": 1})", ""),
      (dir / "model.safetensors").string() + ": tensor a\\x0ab is an integer, expected an object");
}

TEST(Safetensors, EveryTruncationIsAFormatError) {
  TempDir dir;
  const std::string full = safetensors_bytes(
      R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", floats({1.0f, 2.0f}));
  const fs::path p = dir / "model.safetensors";
  for (size_t n = 0; n < full.size(); ++n) {
    write_bytes(p, full.substr(0, n));
    const std::string err = open_error(p);
    EXPECT_EQ(err.rfind(p.string() + ": ", 0), 0u) << "prefix of " << n << " bytes: " << err;
  }
  write_bytes(p, full);
  EXPECT_EQ(SafetensorsModel::open(p)->tensors().size(), 1u);
}

TEST(Safetensors, DirectoryProblems) {
  TempDir dir;
  EXPECT_EQ(open_error(dir / "absent"), (dir / "absent").string() + ": no such file or directory");
  EXPECT_EQ(open_error(dir.path()),
            dir.path().string() +
                ": no model.safetensors or model.safetensors.index.json in this directory");

  write_bytes(dir / "model.safetensors", safetensors_bytes("{}", ""));
  write_bytes(dir / "config.json", "{\"hidden_size\": ");
  const std::string err = open_error(dir.path());
  const std::string prefix = (dir / "config.json").string() + ": config.json is not valid JSON: ";
  EXPECT_EQ(err.substr(0, prefix.size()), prefix) << err;

  write_bytes(dir / "config.json", "[]");
  EXPECT_EQ(open_error(dir.path()),
            (dir / "config.json").string() + ": config is an array, expected an object");

  write_bytes(dir / "config.json", R"({"hidden_size": 8})");
  EXPECT_EQ(SafetensorsModel::open(dir.path())->config().at("hidden_size"), 8);
}

// ---- sharded checkpoints ----

class ShardedSafetensors : public ::testing::Test {
 protected:
  void SetUp() override {
    write_bytes(dir_ / "model-00001-of-00002.safetensors",
                safetensors_bytes(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})",
                                  floats({1.0f, 2.0f})));
    write_bytes(dir_ / "model-00002-of-00002.safetensors",
                safetensors_bytes(R"({"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                                  R"("c":{"dtype":"F16","shape":[2],"data_offsets":[4,8]}})",
                                  floats({3.0f, 0.0f})));
  }
  void write_index(const std::string& text) { write_bytes(index(), text); }
  fs::path index() const { return dir_ / "model.safetensors.index.json"; }
  std::string shard(int k) const {
    return (dir_ / ("model-0000" + std::to_string(k) + "-of-00002.safetensors")).string();
  }

  static constexpr const char* kWeightMap =
      R"({"metadata": {"total_size": 16}, "weight_map": {)"
      R"("a": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors",)"
      R"("c": "model-00002-of-00002.safetensors"}})";

  TempDir dir_;
};

TEST_F(ShardedSafetensors, LoadsBothShards) {
  write_index(kWeightMap);
  write_bytes(dir_ / "config.json", R"({"architectures": ["LlamaForCausalLM"]})");
  auto m = SafetensorsModel::open(dir_.path());
  EXPECT_EQ(m->files(), (std::vector<std::string>{shard(1), shard(2)}));
  ASSERT_EQ(m->tensors().size(), 3u);
  EXPECT_EQ(m->tensors()[0].name, "a");
  EXPECT_EQ(as_floats(*m->tensor("a")), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(as_floats(*m->tensor("b")), (std::vector<float>{3.0f}));
  EXPECT_EQ(m->tensor("c")->type, TensorType::F16);
  EXPECT_EQ(m->config().at("architectures")[0], "LlamaForCausalLM");

  // The index file itself can be given too.
  auto m2 = SafetensorsModel::open(index());
  EXPECT_EQ(m2->tensors().size(), 3u);
  EXPECT_EQ(m2->dir(), dir_.path());
}

TEST_F(ShardedSafetensors, MissingShard) {
  fs::remove(shard(2));
  write_index(kWeightMap);
  EXPECT_EQ(open_error(dir_.path()),
            index().string() +
                ": weight_map names shard model-00002-of-00002.safetensors, which does not exist");
}

TEST_F(ShardedSafetensors, IndexNotJson) {
  write_index(R"({"weight_map": {"a": )");
  const std::string err = open_error(dir_.path());
  const std::string prefix = index().string() + ": index is not valid JSON: ";
  EXPECT_EQ(err.substr(0, prefix.size()), prefix) << err;
}

TEST_F(ShardedSafetensors, IndexShapeErrors) {
  const std::string file = index().string() + ": ";
  write_index(R"({"metadata": {}})");
  EXPECT_EQ(open_error(dir_.path()), file + "missing field weight_map");
  write_index(R"({"weight_map": []})");
  EXPECT_EQ(open_error(dir_.path()), file + "weight_map is an array, expected an object");
  write_index(R"({"weight_map": {"a": 1}})");
  EXPECT_EQ(open_error(dir_.path()), file + "weight_map entry a is an integer, expected a string");
  write_index(R"({"weight_map": {"a": "../model-00001-of-00002.safetensors"}})");
  EXPECT_EQ(open_error(dir_.path()),
            file +
                "weight_map puts tensor a in \"../model-00001-of-00002.safetensors\", which is "
                "not a file name");
}

TEST_F(ShardedSafetensors, TensorListedButAbsent) {
  write_index(
      R"({"weight_map": {"a": "model-00001-of-00002.safetensors",)"
      R"("b": "model-00002-of-00002.safetensors", "d": "model-00002-of-00002.safetensors"}})");
  EXPECT_EQ(open_error(dir_.path()),
            index().string() +
                ": weight_map puts tensor d in model-00002-of-00002.safetensors, "
                "but that file has no such tensor");
  // Present, but in the other shard.
  write_index(R"({"weight_map": {"a": "model-00002-of-00002.safetensors",)"
              R"("b": "model-00001-of-00002.safetensors"}})");
  EXPECT_EQ(open_error(dir_.path()),
            index().string() +
                ": weight_map puts tensor a in model-00002-of-00002.safetensors, "
                "but that file has no such tensor");
}

TEST_F(ShardedSafetensors, DuplicateAcrossShards) {
  write_bytes(dir_ / "model-00002-of-00002.safetensors",
              safetensors_bytes(R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}})",
                                floats({3.0f})));
  write_index(R"({"weight_map": {"a": "model-00001-of-00002.safetensors",)"
              R"("x": "model-00002-of-00002.safetensors"}})");
  EXPECT_EQ(open_error(dir_.path()), shard(2) + ": tensor a is also in " + shard(1));
}

TEST_F(ShardedSafetensors, BadShardNamesItself) {
  write_bytes(dir_ / "model-00002-of-00002.safetensors", u64_le(64) + "{}");
  write_index(kWeightMap);
  EXPECT_EQ(open_error(dir_.path()),
            shard(2) + ": header length 64 is longer than the file (10 bytes)");
}

}  // namespace
}  // namespace reprise
