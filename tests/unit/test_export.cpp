// Export on the bundled stories260K (GGUF) and its Hugging Face copy: exported models run along
// their plain path compute what the source computes along the exported path (bit for bit where
// no Q/K row reordering is involved), round trips reproduce tensors byte for byte, and every bad
// request fails with a one-line error and leaves the output directory as it was.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fmt/format.h>

#include <unistd.h>
#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <random>

#include "engine/session.h"
#include "export/export.h"
#include "export/mergekit.h"
#include "format/gguf.h"
#include "format/gguf_writer.h"
#include "format/safetensors.h"
#include "model/hf_config.h"
#include "support/logits.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise::exporter {
namespace {

using test::max_abs_diff;
using test::slurp;

namespace fs = std::filesystem;

// "<s> Once upon a time, there was a little girl named Lily." in the tok512 vocabulary.
const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378, 270, 293, 263, 414, 259, 264, 280};

fs::path hf_stories() {
  return test::source_dir() / "tests/data/hf/stories260K-f32";
}

std::vector<float> logits(const Model& m, const LayerPath& path) {
  return test::prompt_logits(m, path, kPrompt);
}

std::vector<float> logits(const fs::path& model, const std::string& spec = "") {
  auto m = Model::load(model);
  return logits(*m, parse_layer_path(spec, m->hparams().n_layer));
}

// Bitwise equality, with the largest difference in the message when it fails.
#define EXPECT_BITWISE_EQ(a, b)                                                \
  do {                                                                         \
    const auto& a_ = (a);                                                      \
    const auto& b_ = (b);                                                      \
    ASSERT_EQ(a_.size(), b_.size());                                           \
    EXPECT_EQ(std::memcmp(a_.data(), b_.data(), a_.size() * sizeof(float)), 0) \
        << "max abs diff " << max_abs_diff(a_, b_);                            \
  } while (0)

class ExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* t = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("reprise-export-" + std::to_string(::getpid()) + "-" + t->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // Every entry under the test directory, recursively, so leftovers anywhere show up.
  std::vector<std::string> listing() const {
    std::vector<std::string> out;
    for (const auto& e : fs::recursive_directory_iterator(dir_))
      out.push_back(fs::relative(e.path(), dir_).string());
    std::sort(out.begin(), out.end());
    return out;
  }

  ExportResult run(const Model& m, const std::string& spec, const fs::path& out, Format f,
                   const std::string& type = "keep", bool alias = false) {
    ExportOptions o;
    o.format = f;
    o.type = parse_type_spec(type);
    o.alias = alias;
    o.n_threads = 2;
    return export_model(m, parse_layer_path(spec, m.hparams().n_layer), out, o);
  }

  fs::path dir_;
};

const char* kPaths[] = {"", "repeat:1:4", "skip:2:3", "repeat:2:3:3", "4,3,2,1,0"};

TEST_F(ExportTest, GgufAlongPathEqualsSourceBitwise) {
  auto src = Model::load(test::default_model());
  for (const char* spec : kPaths) {
    SCOPED_TRACE(spec);
    const fs::path out = dir_ / "out.gguf";
    fs::remove(out);
    const LayerPath path = parse_layer_path(spec, 5);
    run(*src, spec, out, Format::Gguf);
    auto exported = Model::load(out);
    EXPECT_EQ(exported->hparams().n_layer, path.size());
    EXPECT_BITWISE_EQ(logits(*exported, LayerPath::identity(path.size())), logits(*src, path));
  }
}

TEST_F(ExportTest, GgufKeepsMetadataAndRenumbersBlocks) {
  auto src = Model::load(test::default_model());
  const fs::path out = dir_ / "rep.gguf";
  const auto res = run(*src, "repeat:1:4", out, Format::Gguf);
  EXPECT_EQ(res.files, std::vector<fs::path>{out});
  auto g = GgufFile::open(out);
  const GgufFile& s = *src->gguf();
  EXPECT_EQ(*g->get_int("llama.block_count"), 8);
  EXPECT_EQ(g->find("llama.block_count")->type, s.find("llama.block_count")->type);
  EXPECT_EQ(*g->get_string("general.name"), s.get_string("general.name").value_or("stories260K") +
                                                " (reprise layer path 0..3,1..4)");
  EXPECT_EQ(*g->get_string("reprise.layer_path"), "0..3,1..4");
  // Every other key is kept as it was (tokenizer, rope settings, ...).
  for (const auto& [key, value] : s.metadata()) {
    if (key == "llama.block_count" || key == "general.name") continue;
    const GgufValue* v = g->find(key);
    ASSERT_NE(v, nullptr) << key;
    EXPECT_EQ(format_value(*v, 1000), format_value(value, 1000)) << key;
  }
  // blk.5 is physical layer 2, byte for byte.
  for (const char* role : {"attn_q.weight", "ffn_down.weight", "attn_norm.weight"}) {
    const TensorView* a = g->tensor(std::string("blk.5.") + role);
    const TensorView* b = s.tensor(std::string("blk.2.") + role);
    ASSERT_TRUE(a && b) << role;
    EXPECT_EQ(a->shape, b->shape);
    EXPECT_TRUE(std::equal(a->data.begin(), a->data.end(), b->data.begin(), b->data.end()));
  }
  EXPECT_EQ(g->tensor("blk.8.attn_q.weight"), nullptr);
  // The tokenizer came along: the exported file tokenizes like the source.
  auto m = Model::load(out);
  ASSERT_NE(m->tokenizer(), nullptr);
  EXPECT_EQ(m->tokenizer()->encode("Once upon a time", {}),
            src->tokenizer()->encode("Once upon a time", {}));
}

TEST_F(ExportTest, AliasedGgufSharesRepeatedBlocks) {
  auto src = Model::load(test::default_model());
  const fs::path full = dir_ / "full.gguf", aliased = dir_ / "alias.gguf";
  run(*src, "repeat:1:4", full, Format::Gguf);
  const auto res = run(*src, "repeat:1:4", aliased, Format::Gguf, "keep", /*alias=*/true);
  auto g = GgufFile::open(aliased);
  // Same data offset for a repeated block's tensors; the file holds no extra weight bytes.
  const auto& infos = g->tensor_infos();
  auto info_of = [&](const std::string& n) {
    return *std::find_if(infos.begin(), infos.end(), [&](const auto& i) { return i.name == n; });
  };
  // Path 0 1 2 3 1 2 3 4: positions 4..6 repeat layers 1..3 (positions 1..3).
  for (int p = 4; p <= 6; ++p)
    for (const char* role : {"attn_q.weight", "ffn_up.weight", "attn_norm.weight"})
      EXPECT_EQ(info_of(fmt::format("blk.{}.{}", p, role)).offset,
                info_of(fmt::format("blk.{}.{}", p - 3, role)).offset)
          << p << " " << role;
  EXPECT_NE(info_of("blk.7.ffn_up.weight").offset, info_of("blk.4.ffn_up.weight").offset);
  // Every source tensor is stored once, so the data is as large as the source's.
  uint64_t source_bytes = 0;
  for (const auto& i : src->gguf()->tensor_infos()) source_bytes += i.nbytes;
  EXPECT_EQ(res.tensor_bytes, source_bytes);
  EXPECT_LT(fs::file_size(aliased), fs::file_size(full));
  EXPECT_BITWISE_EQ(logits(aliased), logits(test::default_model(), "repeat:1:4"));
}

// Tensor bytes of `file` by name (GGUF or safetensors).
std::map<std::string, std::string> tensor_bytes(const fs::path& file) {
  std::map<std::string, std::string> out;
  auto add = [&](const std::vector<TensorView>& views) {
    for (const auto& t : views)
      out[t.name] = std::string(reinterpret_cast<const char*>(t.data.data()), t.data.size()) + "|" +
                    std::string(info(t.type).name) + shape_string(t.shape);
  };
  if (file.extension() == ".gguf")
    add(GgufFile::open(file)->tensors());
  else
    add(SafetensorsModel::open(file)->tensors());
  return out;
}

TEST_F(ExportTest, HfFromGgufMatchesSource) {
  auto src = Model::load(test::default_model());
  for (const char* spec : kPaths) {
    SCOPED_TRACE(spec);
    const fs::path out = dir_ / "hf";
    fs::remove_all(out);
    const LayerPath path = parse_layer_path(spec, 5);
    const auto res = run(*src, spec, out, Format::Hf);
    auto exported = Model::load(out);
    EXPECT_EQ(exported->hparams().n_layer, path.size());
    // Llama Q/K rows change order between the formats, which reorders the sums of q.k in
    // attention: equal up to float rounding, not bitwise (docs/export.md).
    EXPECT_LE(max_abs_diff(logits(*exported, LayerPath::identity(path.size())), logits(*src, path)),
              1e-4f);
  }
  // With the plain path the export is, tensor for tensor, the repo's HF copy of the model
  // (un-permuted Q/K rows), and its config says the same.
  const fs::path out = dir_ / "plain";
  const auto res = run(*src, "", out, Format::Hf);
  EXPECT_EQ(tensor_bytes(out / "model.safetensors"),
            tensor_bytes(hf_stories() / "model.safetensors"));
  EXPECT_EQ(res.files, (std::vector<fs::path>{"model.safetensors", "config.json"}));
  auto config = nlohmann::json::parse(slurp(out / "config.json"));
  auto want = nlohmann::json::parse(slurp(hf_stories() / "config.json"));
  // The context length comes from the GGUF (2048); the repo's HF copy chose 512.
  EXPECT_EQ(config["max_position_embeddings"], 2048);
  for (const char* key : {"architectures", "model_type", "hidden_size", "intermediate_size",
                          "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                          "head_dim", "rms_norm_eps", "rope_theta", "vocab_size", "bos_token_id",
                          "eos_token_id", "tie_word_embeddings", "torch_dtype", "hidden_act"})
    EXPECT_EQ(config[key], want[key]) << key;
  EXPECT_CONTAINS(fmt::format("{}", fmt::join(res.notes, "; ")), "no tokenizer files");
}

TEST_F(ExportTest, HfFromHfEqualsSourceBitwise) {
  auto src = Model::load(hf_stories());
  const fs::path out = dir_ / "hf";
  run(*src, "repeat:1:4", out, Format::Hf);
  EXPECT_BITWISE_EQ(logits(out), logits(*src, LayerPath::repeat(5, 1, 4)));
  // The source config is kept; the block count changes.
  auto config = nlohmann::json::parse(slurp(out / "config.json"));
  auto want = nlohmann::json::parse(slurp(hf_stories() / "config.json"));
  want["num_hidden_layers"] = 8;
  EXPECT_EQ(config, want);
  // Tokenizer files come along unchanged.
  for (const char* f :
       {"tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json"})
    EXPECT_EQ(slurp(out / f), slurp(hf_stories() / f)) << f;
}

TEST_F(ExportTest, GgufFromHfIsTheOriginalGguf) {
  auto src = Model::load(hf_stories());
  // Re-permuted Q/K rows: the plain-path export holds exactly the tensors of stories260K.gguf.
  run(*src, "", dir_ / "plain.gguf", Format::Gguf);
  auto want = tensor_bytes(test::default_model());
  EXPECT_EQ(tensor_bytes(dir_ / "plain.gguf"), want);
  // So along a path it computes bit for bit what the original GGUF computes along that path.
  run(*src, "repeat:2:3:3", dir_ / "loop.gguf", Format::Gguf);
  EXPECT_BITWISE_EQ(logits(dir_ / "loop.gguf"), logits(test::default_model(), "repeat:2:3:3"));
  // The vocabulary was converted to GGUF metadata and tokenizes like the HF tokenizer.
  auto m = Model::load(dir_ / "loop.gguf");
  ASSERT_NE(m->tokenizer(), nullptr);
  for (const char* text : {"Once upon a time, there was a little girl named Lily.",
                           "  two  spaces\tand tabs\n", "héllo wörld 123"})
    EXPECT_EQ(m->tokenizer()->encode(text, {}), src->tokenizer()->encode(text, {})) << text;
}

TEST_F(ExportTest, GgufHfGgufRoundTripIsByteIdentical) {
  auto src = Model::load(test::default_model());
  for (const char* spec : {"repeat:1:4", "skip:2:3"}) {
    SCOPED_TRACE(spec);
    const fs::path direct = dir_ / "direct.gguf", hf = dir_ / "hf", back = dir_ / "back.gguf";
    fs::remove(direct), fs::remove_all(hf), fs::remove(back);
    run(*src, spec, direct, Format::Gguf);
    run(*src, spec, hf, Format::Hf);
    auto mid = Model::load(hf);
    run(*mid, "", back, Format::Gguf);
    EXPECT_EQ(tensor_bytes(back), tensor_bytes(direct));
  }
}

TEST_F(ExportTest, HfShardsAboveTheLimit) {
  auto src = Model::load(test::default_model());
  ExportOptions o;
  o.format = Format::Hf;
  o.max_shard_bytes = 300'000;
  o.n_threads = 2;
  const auto res = export_model(*src, LayerPath::repeat(5, 1, 4), dir_ / "hf", o);
  int shards = 0;
  for (const auto& f : res.files) shards += f.string().ends_with(".safetensors");
  EXPECT_GE(shards, 3);
  EXPECT_TRUE(fs::exists(dir_ / "hf/model.safetensors.index.json"));
  EXPECT_FALSE(fs::exists(dir_ / "hf/model.safetensors"));
  auto index = nlohmann::json::parse(slurp(dir_ / "hf/model.safetensors.index.json"));
  EXPECT_EQ(index["metadata"]["total_size"].get<uint64_t>(), res.tensor_bytes);
  // Tensors keep their order across shards: embedding first, output head last.
  EXPECT_EQ(index["weight_map"]["model.embed_tokens.weight"],
            fmt::format("model-00001-of-{:05d}.safetensors", shards));
  EXPECT_EQ(index["weight_map"]["lm_head.weight"],
            fmt::format("model-{:05d}-of-{:05d}.safetensors", shards, shards));
  for (const auto& f : res.files) {
    if (f.string().ends_with(".safetensors")) {
      EXPECT_LE(fs::file_size(dir_ / "hf" / f), 300'000u + 16'384u) << f;
    }
  }
  run(*src, "repeat:1:4", dir_ / "single", Format::Hf);
  EXPECT_BITWISE_EQ(logits(dir_ / "hf"), logits(dir_ / "single"));
}

TEST_F(ExportTest, TypesAndFallbacks) {
  auto src = Model::load(test::default_model());
  const auto res = run(*src, "repeat:1:4", dir_ / "q8.gguf", Format::Gguf, "Q8_0");
  auto g = GgufFile::open(dir_ / "q8.gguf");
  EXPECT_EQ(g->tensor("blk.0.attn_q.weight")->type, TensorType::Q8_0);
  EXPECT_EQ(g->tensor("token_embd.weight")->type, TensorType::Q8_0);
  EXPECT_EQ(g->tensor("blk.0.attn_norm.weight")->type, TensorType::F32);  // 1-D stay F32
  // stories260K's FFN width 172 is not a multiple of 32: ffn_down rows fall back to F16.
  EXPECT_EQ(g->tensor("blk.0.ffn_down.weight")->type, TensorType::F16);
  EXPECT_EQ(*g->get_int("general.file_type"), 7);
  EXPECT_CONTAINS(fmt::format("{}", fmt::join(res.notes, "; ")),
                  "ffn_down.weight rows of 172 elements are not whole Q8_0 blocks: written as F16");
  // Quantization changes the numbers but not the story.
  EXPECT_LT(max_abs_diff(logits(dir_ / "q8.gguf"), logits(test::default_model(), "repeat:1:4")),
            0.5f);

  // A quantized source goes to safetensors as F32 (keep) or the float type asked for.
  auto q8 = Model::load(dir_ / "q8.gguf");
  const auto hres = run(*q8, "", dir_ / "hf", Format::Hf);
  EXPECT_CONTAINS(fmt::format("{}", fmt::join(hres.notes, "; ")),
                  "Q8_0 matrices dequantized to F32");
  auto st = SafetensorsModel::open(dir_ / "hf");
  EXPECT_EQ(st->tensor("model.layers.0.self_attn.v_proj.weight")->type, TensorType::F32);
  EXPECT_EQ(st->tensor("model.layers.0.mlp.down_proj.weight")->type, TensorType::F16);
  {
    const test::ScopedF32Prefill f32;  // Q8_0 and its F32 copy must run the same arithmetic
    EXPECT_LE(max_abs_diff(logits(dir_ / "hf"), logits(*q8, LayerPath::identity(8))), 1e-4f);
  }
  run(*src, "", dir_ / "bf16", Format::Hf, "bf16");
  EXPECT_EQ(nlohmann::json::parse(slurp(dir_ / "bf16/config.json"))["torch_dtype"], "bfloat16");
  EXPECT_EQ(SafetensorsModel::open(dir_ / "bf16")->tensor("lm_head.weight")->type,
            TensorType::BF16);
  try {
    run(*src, "", dir_ / "hfq", Format::Hf, "Q4_K_M");
    FAIL();
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "--type Q4_K_M: safetensors has no ggml quantized types; use keep, F32, F16 or "
              "BF16 for an HF export");
  }
  EXPECT_THROW(parse_type_spec("IQ2_XXS"), Error);  // a type reprise cannot compute
  EXPECT_THROW(parse_type_spec("Q8_K"), Error);
  for (const char* name : {"Q4_1", "Q5_0", "Q5_1", "IQ4_NL", "Q2_K", "Q3_K", "IQ4_XS"})
    EXPECT_EQ(parse_type_spec(name).type, tensor_type_from_name(name)) << name;
  EXPECT_EQ(parse_type_spec("q4_k_m").kind, TypeSpec::Kind::Q4_K_M);
  EXPECT_EQ(parse_type_spec("bf16").type, TensorType::BF16);
}

TEST(ExportPolicy, Q4KMGivesSixBitsWhereLlamaCppDoes) {
  // 32 blocks: the first and last four, and every third block from 6 on, get Q6_K.
  std::vector<int> six;
  for (int b = 0; b < 32; ++b)
    if (q4_k_m_type("ffn_down.weight", b, 32, false) == TensorType::Q6_K) six.push_back(b);
  EXPECT_EQ(six, (std::vector<int>{0, 1, 2, 3, 6, 9, 12, 15, 18, 21, 24, 27, 28, 29, 30, 31}));
  EXPECT_EQ(q4_k_m_type("attn_v.weight", 3, 4, false), TensorType::Q6_K);
  EXPECT_EQ(q4_k_m_type("attn_v.weight", 0, 4, false), TensorType::Q4_K);
  EXPECT_EQ(q4_k_m_type("attn_q.weight", 0, 32, false), TensorType::Q4_K);
  EXPECT_EQ(q4_k_m_type("output.weight", -1, 32, true), TensorType::Q6_K);
  EXPECT_EQ(q4_k_m_type("token_embd.weight", -1, 32, false), TensorType::Q4_K);
}

TEST_F(ExportTest, MergekitRecipeReadsBackAsThePath) {
  auto src = Model::load(test::default_model());
  for (const char* spec : kPaths) {
    const fs::path out = dir_ / "r.yaml";
    fs::remove(out);
    run(*src, spec, out, Format::Mergekit);
    const auto recipe = parse_mergekit_yaml(slurp(out), out.string());
    EXPECT_EQ(recipe_path(recipe, out.string(), 5), parse_layer_path(spec, 5)) << spec;
    EXPECT_EQ(recipe.slices[0].model, test::default_model().string());
    EXPECT_EQ(recipe.dtype, "float32");
  }
  EXPECT_CONTAINS(slurp(dir_ / "r.yaml"),
                  "# mergekit cannot read GGUF files, it needs the Hugging Face weights: make them "
                  "with `reprise export -m " +
                      test::default_model().string() + " --format hf -o stories260K-hf`");
}

// ---------------------------------------------------------------------------------------------
// Bad input through the CLI: one-line errors, exit code 2, and the directory exactly as before.

// Shell-quoted (the test paths hold no quotes). Built piecewise: GCC 12 warns falsely (-Wrestrict)
// about "'" + std::string.
std::string q(const fs::path& p) {
  std::string s = "'";
  s += p.string();
  s += '\'';
  return s;
}

std::string export_args(const fs::path& out, const std::string& extra = "") {
  return "export -m " + q(test::default_model()) + " --path repeat:1:4 -t 2 -o " + q(out) +
         (extra.empty() ? "" : " " + extra);
}

TEST_F(ExportTest, CliWritesEachFormat) {
  for (const char* out : {"m.gguf", "m.yaml"}) {
    auto r = test::run_cli(export_args(dir_ / out));
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_CONTAINS(r.err, "path: 0..3,1..4 (8 blocks from 5 layers)");
    EXPECT_CONTAINS(r.err, "wrote " + (dir_ / out).string());
  }
  auto r = test::run_cli(export_args(dir_ / "hf", "--format hf --type f16"));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(listing(), (std::vector<std::string>{"hf", "hf/config.json", "hf/model.safetensors",
                                                 "m.gguf", "m.yaml"}));
  r = test::run_cli(export_args(dir_ / "model.bin"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "reprise: error: -o " + (dir_ / "model.bin").string() +
                       ": cannot tell the format from the name; pass --format gguf, hf, "
                       "mergekit or exl3\n");
}

TEST_F(ExportTest, CliRefusesExistingOutputWithoutForce) {
  const fs::path gguf = dir_ / "m.gguf", yaml = dir_ / "m.yaml", hf = dir_ / "hf";
  std::ofstream(gguf) << "old gguf";
  std::ofstream(yaml) << "old yaml";
  fs::create_directories(hf);
  std::ofstream(hf / "config.json") << "{}";
  const auto before = listing();
  for (const auto& [out, extra] : {std::pair{gguf, ""}, {yaml, ""}, {hf, "--format hf"}}) {
    auto r = test::run_cli(export_args(out, extra));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err,
              "reprise: error: " + out.string() + ": already exists (use --force to overwrite)\n");
  }
  EXPECT_EQ(listing(), before);
  EXPECT_EQ(slurp(gguf), "old gguf");
  EXPECT_EQ(slurp(yaml), "old yaml");
  EXPECT_EQ(slurp(hf / "config.json"), "{}");

  // --force replaces each, leaving nothing else behind.
  for (const auto& [out, extra] : {std::pair{gguf, ""}, {yaml, ""}, {hf, "--format hf"}}) {
    auto r = test::run_cli(export_args(out, std::string(extra) + " --force"));
    EXPECT_EQ(r.exit_code, 0) << r.err;
  }
  EXPECT_EQ(listing(), (std::vector<std::string>{"hf", "hf/config.json", "hf/model.safetensors",
                                                 "m.gguf", "m.yaml"}));
  EXPECT_EQ(GgufFile::open(gguf)->tensor_infos().size(), 3u + 8 * 9);

  // ... but never a directory that holds anything an export does not write.
  std::ofstream(hf / "notes.txt") << "mine";
  auto r = test::run_cli(export_args(hf, "--format hf --force"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "reprise: error: " + hf.string() +
                       ": holds notes.txt, which an HF export does not write; not replacing the "
                       "directory\n");
  EXPECT_EQ(slurp(hf / "notes.txt"), "mine");
}

TEST_F(ExportTest, CliNamesAnUnwritableOutputDirectory) {
  const fs::path missing = dir_ / "missing" / "m.gguf";
  auto r = test::run_cli(export_args(missing));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "reprise: error: " + missing.string() + ": cannot create a file in " +
                       (dir_ / "missing").string() + ": No such file or directory\n");
  std::ofstream(dir_ / "file") << "x";
  r = test::run_cli(export_args(dir_ / "file" / "hf", "--format hf"));
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(r.err, "reprise: error: " + (dir_ / "file" / "hf").string() +
                       ": cannot create a directory in " + (dir_ / "file").string() +
                       ": Not a directory\n");
  if (::geteuid() != 0) {  // root writes through permission bits
    fs::create_directories(dir_ / "ro");
    fs::permissions(dir_ / "ro", fs::perms::owner_read | fs::perms::owner_exec);
    r = test::run_cli(export_args(dir_ / "ro" / "m.gguf"));
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_CONTAINS(r.err, "Permission denied");
    fs::permissions(dir_ / "ro", fs::perms::owner_all);
    fs::remove(dir_ / "ro");
  }
  EXPECT_EQ(listing(), (std::vector<std::string>{"file"}));
}

TEST_F(ExportTest, CliRejectsAPathTheModelCannotTake) {
  for (const char* format : {"gguf", "hf", "mergekit"}) {
    auto r = test::run_cli("export -m " + q(test::default_model()) + " --path 0..3,9 -o " +
                           q(dir_ / "out") + " --format " + format);
    EXPECT_EQ(r.exit_code, 2);
    EXPECT_EQ(r.err,
              "reprise: error: layer path '0..3,9': layer out of range '9' (the model has "
              "5 layers, 0..4)\n");
  }
  EXPECT_TRUE(listing().empty());
}

// A full disk, simulated with a file-size limit (ulimit -f; dash counts 512-byte blocks, bash
// 1 KiB ones, either is far below the export size): writes past it fail
// with EFBIG, which the CLI reports like ENOSPC once it ignores SIGXFSZ.
TEST_F(ExportTest, CliFullDiskLeavesNoPartialFile) {
  // Beside the test directory, which must stay empty; unique per process and test.
  fs::path err_file = dir_;
  err_file += ".stderr";
  for (const auto& [out, extra] : {std::pair{dir_ / "m.gguf", ""},
                                   {dir_ / "hf", "--format hf"},
                                   {dir_ / "sh", "--format hf --max-shard-size 600KB"}}) {
    const std::string cmd = "ulimit -f 256; exec '" + std::string(REPRISE_BINARY) + "' " +
                            export_args(out, extra) + " 2>'" + err_file.string() + "'";
    const int status = std::system(("sh -c \"" + cmd + "\"").c_str());
    const std::string err = slurp(err_file);
    fs::remove(err_file);
    EXPECT_EQ(WEXITSTATUS(status), 2) << err;
    // HF files are named at their final place, not inside the temporary directory.
    EXPECT_EQ(
        err.rfind(
            "reprise: error: " + out.string() + (out.extension() == ".gguf" ? ": " : "/model"), 0),
        0u)
        << err;
    EXPECT_CONTAINS(err, ": write failed after ");
    EXPECT_CONTAINS(err, "File too large");
    EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
    EXPECT_TRUE(listing().empty()) << out;
  }
}

// A small random Llama GGUF with Llama 3 rope scaling stored, as llama.cpp's converter stores it,
// in rope_freqs.weight: theta 500000, head_dim 64, factor 8, low/high 1/4, original context 8192.
fs::path write_llama3_gguf(const fs::path& path) {
  const int d = 64, ff = 32, vocab = 16, layers = 2;
  std::mt19937 rng(3);
  std::normal_distribution<float> dist(0.0f, 0.2f);
  GgufWriter w;
  w.set("general.architecture", GgufValue::of_string("llama"));
  w.set("llama.block_count", GgufValue::of_u32(layers));
  w.set("llama.context_length", GgufValue::of_u32(128));
  w.set("llama.embedding_length", GgufValue::of_u32(d));
  w.set("llama.feed_forward_length", GgufValue::of_u32(ff));
  w.set("llama.attention.head_count", GgufValue::of_u32(1));
  w.set("llama.attention.head_count_kv", GgufValue::of_u32(1));
  w.set("llama.rope.freq_base", GgufValue::of_f32(500000.0f));
  w.set("llama.attention.layer_norm_rms_epsilon", GgufValue::of_f32(1e-5f));
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool ones = false) {
    int64_t n = 1;
    for (auto x : shape) n *= x;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = ones ? 1.0f + dist(rng) * 0.1f : dist(rng);
    std::vector<std::byte> b(v.size() * 4);
    std::memcpy(b.data(), v.data(), b.size());
    w.add_tensor(name, TensorType::F32, std::move(shape), std::move(b));
  };
  add("token_embd.weight", {vocab, d});
  const auto factors = llama3_rope_freq_factors(d, 500000.0, 8.0, 1.0, 4.0, 8192.0);
  std::vector<std::byte> fb(factors.size() * 4);
  std::memcpy(fb.data(), factors.data(), fb.size());
  w.add_tensor("rope_freqs.weight", TensorType::F32, {d / 2}, std::move(fb));
  for (int l = 0; l < layers; ++l) {
    const std::string b = "blk." + std::to_string(l) + ".";
    add(b + "attn_norm.weight", {d}, true);
    for (const char* m : {"attn_q.weight", "attn_k.weight", "attn_v.weight", "attn_output.weight"})
      add(b + m, {d, d});
    add(b + "ffn_norm.weight", {d}, true);
    add(b + "ffn_gate.weight", {ff, d});
    add(b + "ffn_up.weight", {ff, d});
    add(b + "ffn_down.weight", {d, ff});
  }
  add("output_norm.weight", {d}, true);
  add("output.weight", {vocab, d});
  w.write(path);
  return path;
}

TEST_F(ExportTest, Llama3RopeScalingCrossesFormats) {
  auto src = Model::load(write_llama3_gguf(dir_ / "l3.gguf"));
  ASSERT_EQ(src->hparams().rope_freq_factors.size(), 32u);
  // GGUF -> GGUF keeps the tensor as it is.
  run(*src, "repeat:0:2", dir_ / "rep.gguf", Format::Gguf);
  EXPECT_EQ(tensor_bytes(dir_ / "rep.gguf")["rope_freqs.weight"],
            tensor_bytes(dir_ / "l3.gguf")["rope_freqs.weight"]);
  // GGUF -> HF recovers the rope_scaling parameters from the factors.
  run(*src, "repeat:0:2", dir_ / "hf", Format::Hf);
  auto config = nlohmann::json::parse(slurp(dir_ / "hf/config.json"));
  const auto& rs = config["rope_scaling"];
  EXPECT_EQ(rs["rope_type"], "llama3");
  EXPECT_NEAR(rs["factor"].get<double>(), 8.0, 1e-6);
  EXPECT_NEAR(rs["low_freq_factor"].get<double>(), 1.0, 1e-4);
  EXPECT_NEAR(rs["high_freq_factor"].get<double>(), 4.0, 1e-4);
  EXPECT_EQ(rs["original_max_position_embeddings"], 8192);
  auto hf = Model::load(dir_ / "hf");
  for (size_t i = 0; i < 32; ++i)
    EXPECT_NEAR(hf->hparams().rope_freq_factors[i], src->hparams().rope_freq_factors[i],
                1e-5 * src->hparams().rope_freq_factors[i])
        << i;
  const std::vector<int32_t> ids = {1, 5, 9, 2, 14, 3, 7, 7, 0, 11};
  auto run_ids = [&](const Model& m, const LayerPath& p) {
    SessionOptions so;
    so.n_threads = 2;
    so.n_ctx = 32;
    Session s(m, p, so);
    auto l = s.prefill(ids, true);
    return std::vector<float>(l.begin(), l.end());
  };
  const auto want = run_ids(*src, LayerPath::repeat(2, 0, 2));
  EXPECT_LE(max_abs_diff(run_ids(*hf, LayerPath::identity(4)), want), 1e-4f);
  // HF -> GGUF writes the factors the HF config implies as rope_freqs.weight.
  run(*hf, "", dir_ / "back.gguf", Format::Gguf);
  auto back = Model::load(dir_ / "back.gguf");
  EXPECT_EQ(back->hparams().rope_freq_factors, hf->hparams().rope_freq_factors);
  EXPECT_EQ(tensor_bytes(dir_ / "back.gguf").count("rope_freqs.weight"), 1u);
  EXPECT_LE(max_abs_diff(run_ids(*back, LayerPath::identity(4)), want), 1e-4f);
}

TEST_F(ExportTest, RopeFactorsThatAreNotLlama3AreRefusedForHf) {
  // Divisors that fall back to 1 at long wavelengths follow no Llama 3 curve.
  auto path = write_llama3_gguf(dir_ / "l3.gguf");
  auto g = GgufFile::open(path);
  GgufWriter w;
  w.copy_metadata(*g);
  for (const auto& t : g->tensors()) {
    if (t.name != "rope_freqs.weight") {
      w.add_tensor(t.name, t.type, t.shape, t.data);
      continue;
    }
    std::vector<float> f(32, 2.0f);
    f.back() = 1.5f;
    std::vector<std::byte> b(128);
    std::memcpy(b.data(), f.data(), 128);
    w.add_tensor(t.name, t.type, t.shape, std::move(b));
  }
  w.write(dir_ / "odd.gguf");
  auto src = Model::load(dir_ / "odd.gguf");
  try {
    run(*src, "", dir_ / "hf", Format::Hf);
    FAIL();
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "odd.gguf: rope_freqs.weight ");
    EXPECT_CONTAINS(e.what(), "cannot express it as Hugging Face rope_scaling");
  }
  EXPECT_EQ(listing(), (std::vector<std::string>{"l3.gguf", "odd.gguf"}));
}

}  // namespace
}  // namespace reprise::exporter
