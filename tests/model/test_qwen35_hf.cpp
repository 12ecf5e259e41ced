// Qwen3.5 from a Hugging Face checkpoint: tests/data/hf/qwen35-tiny-f32 holds the weights of
// tests/data/fixtures/qwen35-tiny-f32.gguf as transformers stores them, in a
// Qwen3_5ForConditionalGeneration (written by tests/data/hf/make_qwen35_hf.py, which inverts
// llama.cpp's converter: value heads grouped by key head, A_log, (1 + w) norms, a [C, 1, K]
// conv, the text model under model.language_model.). Loaded, it must compute what llama.cpp
// computed from the GGUF (the goldens) and what reprise computes from the GGUF, along the plain
// path and the goldens' repeat and skip paths. Not bit for bit: the DeltaNet output projection
// sums over its value heads in the checkpoint's order, not the GGUF's, so within a stated
// tolerance.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "export/export.h"
#include "model/golden.h"
#include "support/logits.h"
#include "support/temp_dir_test.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

using nlohmann::json;

// Largest |HF - GGUF| logit of reprise on the two copies (measured 3.8e-6 plain, 6.4e-6 repeat,
// 1.9e-6 skip); against llama.cpp's F32 logits, test_golden.cpp's tolerance for F32 compute
// (measured 8.1e-6, 9.1e-6, 6.2e-6; the GGUF's own 7.0e-6, 8.4e-6, 6.1e-6).
constexpr float kHfVsGguf = 1e-4f;
constexpr float kVsLlamaCpp = 1e-3f;

std::filesystem::path hf_dir() {
  return test::source_dir() / "tests/data/hf/qwen35-tiny-f32";
}
std::unique_ptr<Model> gguf() {
  return Model::load(test::source_dir() / "tests/data/fixtures/qwen35-tiny-f32.gguf");
}

// Writes the fixture's safetensors file to `dst` with its header changed by `edit` (the tensor
// bytes stay as they are).
void rewrite_fixture_header(const std::filesystem::path& dst,
                            const std::function<json(const json&)>& edit) {
  const std::string bytes = test::slurp(hf_dir() / "model.safetensors");
  ASSERT_GT(bytes.size(), 8u);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  std::string header = edit(json::parse(bytes.substr(8, n))).dump();
  header.append((8 - header.size() % 8) % 8, ' ');
  const uint64_t hn = header.size();
  std::ofstream out(dst, std::ios::binary);
  out.write(reinterpret_cast<const char*>(&hn), 8);
  out << header << bytes.substr(8 + n);
}

TEST(Qwen35Hf, HyperparametersEqualTheGguf) {
  auto g = gguf();
  auto h = Model::load(hf_dir());
  const HParams &a = g->hparams(), &b = h->hparams();
  EXPECT_EQ(b.arch, Arch::Qwen35);
  EXPECT_EQ(b.arch_name, a.arch_name);
  EXPECT_EQ(b.n_vocab, a.n_vocab);
  EXPECT_EQ(b.n_embd, a.n_embd);
  EXPECT_EQ(b.n_layer, a.n_layer);
  EXPECT_EQ(b.n_head, a.n_head);
  EXPECT_EQ(b.n_head_kv, a.n_head_kv);
  EXPECT_EQ(b.head_dim, a.head_dim);
  EXPECT_EQ(b.n_ff, a.n_ff);
  EXPECT_EQ(b.n_ctx_train, a.n_ctx_train);
  EXPECT_EQ(b.rms_eps, a.rms_eps);
  EXPECT_EQ(b.rope_theta, a.rope_theta);
  EXPECT_EQ(b.rope_style, a.rope_style);
  EXPECT_EQ(b.rotary_dims(), a.rotary_dims());
  EXPECT_EQ(b.rope_sections, a.rope_sections);
  EXPECT_EQ(b.qk_norm, a.qk_norm);
  EXPECT_EQ(b.attn_out_gate, a.attn_out_gate);
  EXPECT_EQ(b.recurrent, a.recurrent);
  EXPECT_EQ(b.delta.n_k_heads, a.delta.n_k_heads);
  EXPECT_EQ(b.delta.n_v_heads, a.delta.n_v_heads);
  EXPECT_EQ(b.delta.head_k_dim, a.delta.head_k_dim);
  EXPECT_EQ(b.delta.head_v_dim, a.delta.head_v_dim);
  EXPECT_EQ(b.delta.conv_kernel, a.delta.conv_kernel);
  // The checkpoint's value heads are grouped by key head, the GGUF's tiled.
  EXPECT_TRUE(b.delta.v_heads_grouped);
  EXPECT_FALSE(a.delta.v_heads_grouped);
  EXPECT_EQ(h->weights().output.data.data(), h->weights().token_embd.data.data());  // tied
  // Norm gains as the GGUF stores them (1 + w), the DeltaNet head norm as stored, and per value
  // head a = -exp(A_log) (the fixture's A_log are chosen to give the GGUF's a exactly) and
  // dt_bias: HF head h is the (h % r)-th of key head h / r, which the GGUF stores at
  // (h % r) n_k + h / r.
  const int nk = a.delta.n_k_heads, r = a.delta.n_v_heads / nk;
  for (int l = 0; l < a.n_layer; ++l) {
    const BlockWeights &x = g->weights().blocks[l], &y = h->weights().blocks[l];
    EXPECT_EQ(y.attn_norm, x.attn_norm) << "layer " << l;
    EXPECT_EQ(y.ffn_norm, x.ffn_norm) << "layer " << l;
    EXPECT_EQ(y.q_norm, x.q_norm) << "layer " << l;
    EXPECT_EQ(y.k_norm, x.k_norm) << "layer " << l;
    EXPECT_EQ(y.delta.norm, x.delta.norm) << "layer " << l;
    EXPECT_EQ(y.delta.conv.size(), x.delta.conv.size()) << "layer " << l;
    ASSERT_EQ(y.delta.a.size(), x.delta.a.size()) << "layer " << l;
    ASSERT_EQ(y.delta.dt_bias.size(), x.delta.dt_bias.size()) << "layer " << l;
    for (size_t hv = 0; hv < y.delta.a.size(); ++hv) {
      const size_t tiled = (hv % r) * nk + hv / r;
      EXPECT_EQ(y.delta.a[hv], x.delta.a[tiled]) << "layer " << l << " value head " << hv;
      EXPECT_EQ(y.delta.dt_bias[hv], x.delta.dt_bias[tiled]) << "layer " << l << " head " << hv;
    }
  }
  EXPECT_EQ(h->weights().output_norm, g->weights().output_norm);
}

// Logits at every prompt position of the goldens' prompts, along their paths.
TEST(Qwen35Hf, LogitsEqualLlamaCppAndTheGguf) {
  auto g = gguf();
  auto h = Model::load(hf_dir());
  const size_t V = static_cast<size_t>(g->hparams().n_vocab);
  for (const char* name :
       {"qwen35-tiny-f32", "qwen35-tiny-f32-path-repeat", "qwen35-tiny-f32-path-skip"}) {
    SCOPED_TRACE(name);
    const auto golden = test::load_golden(name);
    ASSERT_TRUE(golden) << name;
    const LayerPath path = golden->layer_path ? LayerPath{*golden->layer_path}
                                              : LayerPath::identity(g->hparams().n_layer);
    const auto x = test::prompt_logits(*g, path, golden->prompt_tokens);
    const auto y = test::prompt_logits(*h, path, golden->prompt_tokens);
    ASSERT_EQ(x.size(), y.size());
    EXPECT_LE(test::max_abs_diff(x, y), kHfVsGguf);
    ASSERT_EQ(golden->main.logits_all.size(), golden->prompt_tokens.size());
    for (size_t r = 0; r < golden->prompt_tokens.size(); ++r) {
      const std::vector<float> row(y.begin() + r * V, y.begin() + (r + 1) * V);
      EXPECT_LE(test::max_abs_diff(row, golden->main.logits_all[r]), kVsLlamaCpp)
          << "position " << r;
    }
  }
}

// The text-only class (Qwen3_5ForCausalLM): the text config at the top level, the modules under
// model., no layer_types (every full_attention_interval-th layer is full attention). Made here
// from the fixture: the same tensor bytes under the shorter names.
class Qwen35HfCausalLm : public test::TempDirTest {};

TEST_F(Qwen35HfCausalLm, ComputesWhatTheMultimodalCheckpointComputes) {
  std::ifstream in(hf_dir() / "config.json");
  json top = json::parse(in);
  json cfg = top["text_config"];
  cfg["architectures"] = {"Qwen3_5ForCausalLM"};
  cfg["tie_word_embeddings"] = top["tie_word_embeddings"];
  cfg.erase("layer_types");
  ASSERT_EQ(cfg["full_attention_interval"], 3);
  std::ofstream(dir_ / "config.json") << cfg.dump(2);

  rewrite_fixture_header(dir_ / "model.safetensors", [](const json& header) {
    const std::string text = "model.language_model.";
    json renamed = json::object();
    for (const auto& [k, v] : header.items())
      renamed[k.starts_with(text) ? "model." + k.substr(text.size()) : k] = v;
    return renamed;
  });

  auto a = Model::load(hf_dir());
  auto b = Model::load(dir_);
  EXPECT_EQ(b->hparams().recurrent, a->hparams().recurrent);
  const std::vector<int32_t> prompt = {300, 301, 220, 75, 483, 83, 546, 220, 420, 709, 220, 77};
  for (const LayerPath& path : {LayerPath::identity(6), LayerPath{{0, 1, 2, 1, 2, 3, 4, 5}}}) {
    SCOPED_TRACE(path.canonical());
    const auto x = test::prompt_logits(*a, path, prompt);
    const auto y = test::prompt_logits(*b, path, prompt);
    EXPECT_EQ(x, y);  // the same weights, read under other names
  }
}

// Export writes GGUF or HF names of the dense llama family from the checkpoint's tensors, and a
// recipe or layer map would lose the layer kinds: every format is refused with one line.
class Qwen35HfExport : public test::TempDirTest {};

TEST_F(Qwen35HfExport, IsRefusedForEveryFormat) {
  auto h = Model::load(hf_dir());
  for (auto [format, name] :
       {std::pair{exporter::Format::Gguf, "gguf"}, std::pair{exporter::Format::Hf, "hf"},
        std::pair{exporter::Format::Mergekit, "mergekit"},
        std::pair{exporter::Format::Exl3, "exl3"}}) {
    SCOPED_TRACE(name);
    exporter::ExportOptions o;
    o.format = format;
    std::string msg;
    try {
      exporter::export_model(*h, LayerPath{{0, 1, 2, 1, 2, 3, 4, 5}}, dir_ / "out", o);
    } catch (const Error& e) {
      msg = e.what();
    }
    EXPECT_EQ(msg, std::string("export: a Hugging Face qwen35 checkpoint cannot be exported as "
                               "--format ") +
                       name + " yet; convert it to GGUF first (llama.cpp's convert_hf_to_gguf.py)");
    EXPECT_TRUE(files().empty());
  }
}

// `reprise info` says per layer what kind it is, as it does for the GGUF.
TEST(Qwen35Hf, InfoListsLayerKindsAsForTheGguf) {
  auto layer_lines = [](const std::string& out) {
    const size_t from = out.find("linear attn:");
    const size_t to = out.find("output head:");
    return from == std::string::npos || to == std::string::npos ? std::string()
                                                                : out.substr(from, to - from);
  };
  const auto h = test::run_cli("info '" + hf_dir().string() + "'");
  ASSERT_EQ(h.exit_code, 0) << h.err;
  const auto g = test::run_cli(
      "info '" + (test::source_dir() / "tests/data/fixtures/qwen35-tiny-f32.gguf").string() + "'");
  ASSERT_EQ(g.exit_code, 0) << g.err;
  EXPECT_CONTAINS(h.out, "  0..1         linear-attention\n  2            full-attention\n");
  EXPECT_EQ(layer_lines(h.out), layer_lines(g.out));
  EXPECT_FALSE(layer_lines(h.out).empty());
}

// A checkpoint that lacks a tensor the config implies names it.
class Qwen35HfBroken : public test::TempDirTest {};

TEST_F(Qwen35HfBroken, MissingTensorIsNamed) {
  std::filesystem::copy_file(hf_dir() / "config.json", dir_ / "config.json");
  rewrite_fixture_header(dir_ / "model.safetensors", [](const json& header) {
    json h = header;
    h.erase("model.language_model.layers.3.linear_attn.A_log");
    return h;
  });
  std::string msg;
  try {
    Model::load(dir_);
  } catch (const Error& e) {
    msg = e.what();
  }
  EXPECT_EQ(msg,
            dir_.string() + ": missing tensor model.language_model.layers.3.linear_attn.A_log");
}

}  // namespace
}  // namespace reprise
