#include "model/hf_config.h"

#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

using nlohmann::json;

const std::string kSource = "cfg/config.json";

HParams parse(const std::string& text) {
  return hparams_from_hf_config(json::parse(text), kSource);
}

// "FormatError: <message>", "Error: <message>" or "no exception", so tests pin the class too.
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const FormatError& e) {
    return std::string("FormatError: ") + e.what();
  } catch (const Error& e) {
    return std::string("Error: ") + e.what();
  }
  return "no exception";
}

std::string parse_error(const std::string& text) {
  return error_of([&] { parse(text); });
}

// A valid Llama config to vary one field at a time.
json llama_base() {
  return json::parse(R"({
    "architectures": ["LlamaForCausalLM"], "model_type": "llama",
    "vocab_size": 1000, "hidden_size": 256, "intermediate_size": 512,
    "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2
  })");
}

std::string error_with(const std::string& key, const json& value) {
  json c = llama_base();
  if (value.is_discarded())
    c.erase(key);
  else
    c[key] = value;
  return error_of([&] { hparams_from_hf_config(c, kSource); });
}

TEST(HfConfig, LlamaTinyFixture) {
  if (!reprise::test::have_shared()) GTEST_SKIP() << "shared fixtures not present";
  const auto path = reprise::test::shared_dir() / "fixtures/hf/llama-tiny-f32/config.json";
  std::ifstream in(path);
  ASSERT_TRUE(in.good()) << path;
  const HParams hp = hparams_from_hf_config(json::parse(in), path.string());
  EXPECT_EQ(hp.arch, Arch::Llama);
  EXPECT_EQ(hp.arch_name, "llama");
  EXPECT_EQ(hp.n_vocab, 512);
  EXPECT_EQ(hp.n_embd, 256);
  EXPECT_EQ(hp.n_layer, 4);
  EXPECT_EQ(hp.n_head, 4);
  EXPECT_EQ(hp.n_head_kv, 2);
  EXPECT_EQ(hp.head_dim, 64);
  EXPECT_EQ(hp.n_ff, 512);
  EXPECT_EQ(hp.n_ctx_train, 2048);
  EXPECT_EQ(hp.rms_eps, 1e-5f);  // 9.999999747378752e-06 is 1e-5f written as a double
  EXPECT_EQ(hp.rope_theta, 10000.0f);
  EXPECT_EQ(hp.rope_style, RopeStyle::Neox);
  EXPECT_TRUE(hp.rope_freq_factors.empty());
  EXPECT_FALSE(hp.qkv_bias);
  EXPECT_FALSE(hp.qk_norm);
  EXPECT_FALSE(hp.tied_output);
  EXPECT_EQ(hp.q_dim(), 256);
  EXPECT_EQ(hp.kv_dim(), 128);
}

TEST(HfConfig, Stories260KFixture) {
  if (!reprise::test::have_shared()) GTEST_SKIP() << "shared fixtures not present";
  const auto path = reprise::test::shared_dir() / "fixtures/hf/stories260K-bf16/config.json";
  std::ifstream in(path);
  const HParams hp = hparams_from_hf_config(json::parse(in), path.string());
  EXPECT_EQ(hp.n_embd, 64);
  EXPECT_EQ(hp.n_layer, 5);
  EXPECT_EQ(hp.n_head, 8);
  EXPECT_EQ(hp.n_head_kv, 4);
  EXPECT_EQ(hp.head_dim, 8);
  EXPECT_EQ(hp.n_ff, 172);
  EXPECT_EQ(hp.n_ctx_train, 512);
}

TEST(HfConfig, Qwen2) {
  // Qwen2.5-0.5B-Instruct's config, abridged.
  const HParams hp = parse(R"({
    "architectures": ["Qwen2ForCausalLM"], "model_type": "qwen2", "hidden_act": "silu",
    "vocab_size": 151936, "hidden_size": 896, "intermediate_size": 4864,
    "num_hidden_layers": 24, "num_attention_heads": 14, "num_key_value_heads": 2,
    "max_position_embeddings": 32768, "rms_norm_eps": 1e-06, "rope_theta": 1000000.0,
    "rope_scaling": null, "sliding_window": 32768, "use_sliding_window": false,
    "tie_word_embeddings": true, "torch_dtype": "bfloat16"
  })");
  EXPECT_EQ(hp.arch, Arch::Qwen2);
  EXPECT_EQ(hp.arch_name, "qwen2");
  EXPECT_EQ(hp.head_dim, 64);
  EXPECT_EQ(hp.n_head_kv, 2);
  EXPECT_EQ(hp.n_ctx_train, 32768);
  EXPECT_EQ(hp.rms_eps, 1e-6f);
  EXPECT_EQ(hp.rope_theta, 1e6f);
  EXPECT_EQ(hp.rope_style, RopeStyle::Neox);
  EXPECT_TRUE(hp.qkv_bias);
  EXPECT_FALSE(hp.qk_norm);
  EXPECT_TRUE(hp.tied_output);
}

TEST(HfConfig, Qwen2Defaults) {
  // Fields left out take Qwen2Config's defaults.
  const HParams hp = parse(R"({
    "model_type": "qwen2", "vocab_size": 512, "hidden_size": 256, "intermediate_size": 512,
    "num_hidden_layers": 4, "num_attention_heads": 4
  })");
  EXPECT_EQ(hp.arch, Arch::Qwen2);
  EXPECT_EQ(hp.n_head_kv, 4);
  EXPECT_EQ(hp.head_dim, 64);
  EXPECT_EQ(hp.n_ctx_train, 32768);
  EXPECT_EQ(hp.rms_eps, 1e-6f);
  EXPECT_EQ(hp.rope_theta, 10000.0f);
  EXPECT_FALSE(hp.tied_output);
  EXPECT_TRUE(hp.qkv_bias);
}

TEST(HfConfig, Qwen3) {
  // Qwen3-0.6B: head_dim 128 although hidden_size / heads is 64.
  const HParams hp = parse(R"({
    "architectures": ["Qwen3ForCausalLM"], "model_type": "qwen3", "attention_bias": false,
    "vocab_size": 151936, "hidden_size": 1024, "intermediate_size": 3072, "head_dim": 128,
    "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
    "max_position_embeddings": 40960, "rms_norm_eps": 1e-06, "rope_theta": 1000000,
    "rope_scaling": null, "tie_word_embeddings": true
  })");
  EXPECT_EQ(hp.arch, Arch::Qwen3);
  EXPECT_EQ(hp.arch_name, "qwen3");
  EXPECT_EQ(hp.head_dim, 128);
  EXPECT_EQ(hp.q_dim(), 2048);
  EXPECT_EQ(hp.kv_dim(), 1024);
  EXPECT_EQ(hp.n_ctx_train, 40960);
  EXPECT_EQ(hp.rope_theta, 1e6f);
  EXPECT_TRUE(hp.qk_norm);
  EXPECT_FALSE(hp.qkv_bias);
  EXPECT_TRUE(hp.tied_output);
}

TEST(HfConfig, Qwen3DefaultHeadDimIs128) {
  const HParams hp = parse(R"({
    "model_type": "qwen3", "vocab_size": 512, "hidden_size": 256, "intermediate_size": 512,
    "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": null
  })");
  EXPECT_EQ(hp.head_dim, 128);
}

TEST(HfConfig, LlamaDefaultsAndAttentionBias) {
  json c = llama_base();
  HParams hp = hparams_from_hf_config(c, kSource);
  EXPECT_EQ(hp.n_ctx_train, 2048);
  EXPECT_EQ(hp.rms_eps, 1e-6f);
  EXPECT_EQ(hp.rope_theta, 10000.0f);
  EXPECT_EQ(hp.head_dim, 64);
  EXPECT_FALSE(hp.qkv_bias);
  EXPECT_FALSE(hp.tied_output);
  c["attention_bias"] = true;
  c["tie_word_embeddings"] = true;
  hp = hparams_from_hf_config(c, kSource);
  EXPECT_TRUE(hp.qkv_bias);
  EXPECT_TRUE(hp.tied_output);
}

// Llama 3.1 8B's rope: theta 5e5, head_dim 128, factor 8, low 1, high 4, original context 8192.
// Wavelength of pair i is 2*pi * 500000^(i/64); it is below 8192/4 = 2048 up to i = 28 (divisor
// 1) and above 8192/1 for i >= 35 (divisor 8). For i = 32: wavelength 2*pi*sqrt(5e5) = 4442.883,
// smooth = (8192/4442.883 - 1) / 3 = 0.281284, divisor = 1 / ((1 - smooth)/8 + smooth) = 2.694530.
void expect_llama31_factors(const std::vector<float>& f) {
  ASSERT_EQ(f.size(), 64u);
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[28], 1.0f);
  EXPECT_NEAR(f[29], 1.207484f, 1e-5);
  EXPECT_NEAR(f[30], 1.553415f, 1e-5);
  EXPECT_NEAR(f[32], 2.694530f, 1e-5);
  EXPECT_NEAR(f[34], 5.257327f, 1e-5);
  EXPECT_EQ(f[35], 8.0f);
  EXPECT_EQ(f[63], 8.0f);
  for (size_t i = 1; i < f.size(); ++i) EXPECT_GE(f[i], f[i - 1]) << i;
}

TEST(HfConfig, Llama3RopeScaling) {
  const HParams hp = parse(R"({
    "architectures": ["LlamaForCausalLM"], "vocab_size": 128256, "hidden_size": 4096,
    "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "max_position_embeddings": 131072, "rms_norm_eps": 1e-05,
    "rope_theta": 500000.0, "tie_word_embeddings": false,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"}
  })");
  EXPECT_EQ(hp.head_dim, 128);
  EXPECT_EQ(hp.rope_theta, 500000.0f);
  EXPECT_EQ(hp.n_ctx_train, 131072);
  expect_llama31_factors(hp.rope_freq_factors);
}

TEST(HfConfig, Llama3RopeScalingOldAndNewSpellings) {
  // Older configs say "type"; transformers 5 nests everything, rope_theta included, in
  // rope_parameters.
  json c = llama_base();
  c["hidden_size"] = 4096;
  c["num_attention_heads"] = 32;
  c["num_key_value_heads"] = 8;
  c["rope_theta"] = 500000.0;
  c["rope_scaling"] = json::parse(R"({"type": "llama3", "factor": 8, "low_freq_factor": 1,
      "high_freq_factor": 4, "original_max_position_embeddings": 8192})");
  expect_llama31_factors(hparams_from_hf_config(c, kSource).rope_freq_factors);

  c.erase("rope_scaling");
  c.erase("rope_theta");
  c["rope_parameters"] = json::parse(R"({"rope_type": "llama3", "rope_theta": 500000.0,
      "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
      "original_max_position_embeddings": 8192})");
  HParams hp = hparams_from_hf_config(c, kSource);
  EXPECT_EQ(hp.rope_theta, 500000.0f);
  expect_llama31_factors(hp.rope_freq_factors);

  c["rope_parameters"] = json::parse(R"({"rope_type": "default", "rope_theta": 1000000.0})");
  hp = hparams_from_hf_config(c, kSource);
  EXPECT_EQ(hp.rope_theta, 1e6f);
  EXPECT_TRUE(hp.rope_freq_factors.empty());
}

TEST(HfConfig, RopeScalingErrors) {
  EXPECT_EQ(error_with("rope_scaling", json::parse(R"({"rope_type": "yarn", "factor": 4.0})")),
            "Error: cfg/config.json: rope scaling type yarn is not supported (supported: llama3)");
  EXPECT_EQ(
      error_with("rope_scaling", json::parse(R"({"type": "linear", "factor": 2.0})")),
      "Error: cfg/config.json: rope scaling type linear is not supported (supported: llama3)");
  EXPECT_EQ(error_with("rope_scaling", json::parse(R"({"rope_type": "llama3",
                "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                "original_max_position_embeddings": 8192})")),
            "FormatError: cfg/config.json: missing field rope_scaling.factor");
  EXPECT_EQ(error_with("rope_scaling", json::parse(R"({"rope_type": "llama3", "factor": 8,
                "low_freq_factor": 4.0, "high_freq_factor": 1.0,
                "original_max_position_embeddings": 8192})")),
            "FormatError: cfg/config.json: rope_scaling.high_freq_factor (1) must be larger than "
            "rope_scaling.low_freq_factor (4)");
  EXPECT_EQ(error_with("rope_scaling", json::parse(R"({"factor": 8})")),
            "FormatError: cfg/config.json: missing field rope_scaling.rope_type");
  EXPECT_EQ(error_with("rope_scaling", "llama3"),
            "FormatError: cfg/config.json: field rope_scaling is a string, expected an object");
  EXPECT_EQ(error_with("rope_theta", "1e4"),
            "FormatError: cfg/config.json: field rope_theta is a string, expected a number");
  EXPECT_EQ(error_with("rope_theta", 0),
            "FormatError: cfg/config.json: field rope_theta is 0, expected a positive number");
}

TEST(HfConfig, UnsupportedArchitecture) {
  EXPECT_EQ(parse_error(R"({"architectures": ["MistralForCausalLM"], "model_type": "mistral"})"),
            "Error: cfg/config.json: unsupported architecture MistralForCausalLM (supported: "
            "LlamaForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM, "
            "MixtralForCausalLM, Phi3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, "
            "Qwen3_5ForCausalLM, Qwen3_5ForConditionalGeneration)");
  EXPECT_EQ(parse_error(R"({"model_type": "gemma"})"),
            "Error: cfg/config.json: unsupported architecture gemma (supported: llama, qwen2, "
            "qwen3, qwen3_moe, mixtral, phi3, gemma2, gemma3_text, qwen3_5_text, qwen3_5)");
  EXPECT_EQ(parse_error(R"({"hidden_size": 8})"),
            "FormatError: cfg/config.json: missing field architectures (and model_type)");
  EXPECT_EQ(parse_error(R"({"architectures": []})"),
            "FormatError: cfg/config.json: field architectures is an empty array");
  EXPECT_EQ(parse_error(R"({"architectures": "LlamaForCausalLM"})"),
            "FormatError: cfg/config.json: field architectures is a string, expected an array");
  EXPECT_EQ(parse_error("[1]"),
            "FormatError: cfg/config.json: config is an array, expected an "
            "object");
}

TEST(HfConfig, FieldErrors) {
  const std::string fe = "FormatError: cfg/config.json: ";
  EXPECT_EQ(error_with("hidden_size", json(json::value_t::discarded)),
            fe + "missing field hidden_size");
  EXPECT_EQ(error_with("vocab_size", json(json::value_t::discarded)),
            fe + "missing field vocab_size");
  EXPECT_EQ(error_with("hidden_size", "256"),
            fe + "field hidden_size is a string, expected an integer");
  EXPECT_EQ(error_with("hidden_size", 256.0),
            fe + "field hidden_size is a float, expected an integer");
  EXPECT_EQ(error_with("hidden_size", nullptr),
            fe + "field hidden_size is null, expected an integer");
  EXPECT_EQ(error_with("num_hidden_layers", 0),
            fe + "field num_hidden_layers is 0, expected a positive integer");
  EXPECT_EQ(error_with("intermediate_size", -5),
            fe + "field intermediate_size is -5, expected a positive integer");
  EXPECT_EQ(error_with("vocab_size", 4294967296ull),
            fe + "field vocab_size is 4294967296, too large");
  EXPECT_EQ(error_with("rms_norm_eps", "1e-5"),
            fe + "field rms_norm_eps is a string, expected a number");
  EXPECT_EQ(error_with("tie_word_embeddings", "yes"),
            fe + "field tie_word_embeddings is a string, expected a boolean");
  EXPECT_EQ(error_with("num_key_value_heads", 3),
            fe + "num_attention_heads 4 is not a multiple of num_key_value_heads 3");
  EXPECT_EQ(error_with("num_key_value_heads", 8),
            fe + "num_attention_heads 4 is not a multiple of num_key_value_heads 8");
  EXPECT_EQ(error_with("head_dim", 63),
            fe + "head_dim 63 is odd; rope rotates pairs of dimensions");
  EXPECT_EQ(error_with("hidden_size", 250),
            fe + "hidden_size 250 is not a multiple of num_attention_heads 4 (and there is no "
                 "head_dim)");
  EXPECT_EQ(error_with("hidden_act", "gelu"),
            "Error: cfg/config.json: hidden_act gelu is not supported (supported: silu)");
  EXPECT_EQ(error_with("mlp_bias", true), "Error: cfg/config.json: mlp_bias true is not supported");
  // Null optional fields are as good as absent.
  EXPECT_EQ(error_with("num_key_value_heads", nullptr), "no exception");
}

TEST(HfConfig, Llama3FactorsDirect) {
  // Tiny heads put single pairs in each regime.
  const auto f = llama3_rope_freq_factors(4, 10000.0, 2.0, 1.0, 4.0, 64.0);
  // Pair 0: wavelength 2*pi < 64/4 -> 1. Pair 1: 2*pi*100 = 628.3 > 64 -> 2.
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f[0], 1.0f);
  EXPECT_EQ(f[1], 2.0f);
  // Pair 1 of head_dim 8 (theta 10000): wavelength 2*pi*10 = 62.83, inside [16, 64]:
  // smooth = (64/62.832 - 1)/3 = 0.0061967, divisor = 1/((1 - s)/2 + s) = 1.987684.
  const auto g = llama3_rope_freq_factors(8, 10000.0, 2.0, 1.0, 4.0, 64.0);
  ASSERT_EQ(g.size(), 4u);
  EXPECT_NEAR(g[1], 1.987684f, 1e-5);
}

// The newer architectures: transformers' defaults for what a config leaves out, and what reprise
// refuses rather than run a different model.
json arch_base(const char* cls) {
  json c = llama_base();
  c["architectures"] = {cls};
  c.erase("model_type");
  c["num_hidden_layers"] = 7;
  return c;
}

TEST(HfConfig, Gemma3DefaultsAndLayerKinds) {
  json c = arch_base("Gemma3ForCausalLM");
  HParams hp = hparams_from_hf_config(c, kSource);
  EXPECT_EQ(hp.arch, Arch::Gemma3);
  EXPECT_EQ(hp.arch_name, "gemma3");
  EXPECT_EQ(hp.head_dim, 256);                // Gemma3TextConfig.head_dim
  EXPECT_FLOAT_EQ(hp.attn_scale, 1.0f / 16);  // query_pre_attn_scalar 256
  EXPECT_FLOAT_EQ(hp.embd_scale, 16.0f);      // sqrt(hidden_size 256)
  EXPECT_TRUE(hp.tied_output && hp.post_norms && hp.qk_norm);
  EXPECT_EQ(hp.ffn_act, FfnAct::GeluTanh);
  EXPECT_EQ(hp.rope_style, RopeStyle::Neox);
  EXPECT_EQ(hp.final_softcap, 0.0f);
  EXPECT_EQ(hp.attn_softcap, 0.0f);
  ASSERT_EQ(hp.layers.size(), 7u);
  for (int l = 0; l < 7; ++l) {  // sliding_window_pattern 6: layer 5 is the global one
    SCOPED_TRACE(l);
    const LayerAttn a = hp.layer_attn(l);
    EXPECT_EQ(a.window, l == 5 ? 0 : 4096);
    EXPECT_EQ(a.rope_theta, l == 5 ? 1e6f : 1e4f);
  }
  c["layer_types"] = {"full_attention",   "sliding_attention", "sliding_attention",
                      "full_attention",   "sliding_attention", "sliding_attention",
                      "sliding_attention"};
  c["sliding_window"] = 512;
  c["rope_local_base_freq"] = 5000;
  c["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 8.0}};
  c["final_logit_softcapping"] = 30.0;
  c["query_pre_attn_scalar"] = 64;
  hp = hparams_from_hf_config(c, kSource);
  EXPECT_EQ(hp.layer_attn(0).window, 0);
  EXPECT_EQ(hp.layer_attn(0).rope_freq_scale, 0.125f);  // linear scaling: global layers only
  EXPECT_EQ(hp.layer_attn(1).window, 512);
  EXPECT_EQ(hp.layer_attn(1).rope_theta, 5000.0f);
  EXPECT_EQ(hp.layer_attn(1).rope_freq_scale, 1.0f);
  EXPECT_EQ(hp.layer_attn(3).window, 0);
  EXPECT_EQ(hp.final_softcap, 30.0f);
  EXPECT_FLOAT_EQ(hp.attn_scale, 1.0f / 8);
}

TEST(HfConfig, Gemma2DefaultsAndSoftcaps) {
  json c = arch_base("Gemma2ForCausalLM");
  c["tie_word_embeddings"] = false;  // llama.cpp's gemma2 ties the head whatever the file says
  HParams hp = hparams_from_hf_config(c, kSource);
  EXPECT_EQ(hp.arch_name, "gemma2");
  EXPECT_TRUE(hp.tied_output);
  EXPECT_FALSE(hp.qk_norm);
  EXPECT_EQ(hp.attn_softcap, 50.0f);
  EXPECT_EQ(hp.final_softcap, 30.0f);
  for (int l = 0; l < 7; ++l) {  // even layers slide, all with rope_theta
    EXPECT_EQ(hp.layer_attn(l).window, l % 2 == 0 ? 4096 : 0) << l;
    EXPECT_EQ(hp.layer_attn(l).rope_theta, 1e4f) << l;
  }
  c["attn_logit_softcapping"] = nullptr;  // null switches a cap off
  c["final_logit_softcapping"] = 3.0;
  hp = hparams_from_hf_config(c, kSource);
  EXPECT_EQ(hp.attn_softcap, 0.0f);
  EXPECT_EQ(hp.final_softcap, 3.0f);
}

TEST(HfConfig, MoeConfigs) {
  json c = arch_base("MixtralForCausalLM");
  HParams hp = hparams_from_hf_config(c, kSource);
  EXPECT_EQ(hp.arch, Arch::Llama);
  EXPECT_EQ(hp.arch_name, "llama");
  EXPECT_EQ(hp.n_expert, 8);
  EXPECT_EQ(hp.n_expert_used, 2);
  EXPECT_EQ(hp.n_ff_exp, 512);  // intermediate_size is the expert width
  EXPECT_EQ(hp.rope_theta, 1e6f);
  EXPECT_FLOAT_EQ(hp.rms_eps, 1e-5f);
  c["sliding_window"] = nullptr;
  EXPECT_NO_THROW(hparams_from_hf_config(c, kSource));
  c["sliding_window"] = 4096;
  EXPECT_EQ(error_of([&] { hparams_from_hf_config(c, kSource); }),
            "Error: cfg/config.json: sliding_window is not supported for MixtralForCausalLM");

  c = arch_base("Qwen3MoeForCausalLM");
  c.erase("intermediate_size");
  c["num_experts"] = 128;
  c["num_experts_per_tok"] = 8;
  c["moe_intermediate_size"] = 96;
  c["norm_topk_prob"] = true;
  hp = hparams_from_hf_config(c, kSource);
  EXPECT_EQ(hp.arch_name, "qwen3moe");
  EXPECT_TRUE(hp.qk_norm);
  EXPECT_EQ(hp.head_dim, 128);
  EXPECT_EQ(hp.n_expert, 128);
  EXPECT_EQ(hp.n_expert_used, 8);
  EXPECT_EQ(hp.n_ff_exp, 96);
  EXPECT_EQ(hp.n_ff, 0);
  const std::string e = "Error: cfg/config.json: ";
  auto with = [&](const char* key, const json& v) {
    json d = c;
    if (v.is_discarded())
      d.erase(key);
    else
      d[key] = v;
    return error_of([&] { hparams_from_hf_config(d, kSource); });
  };
  const std::string topk =
      e +
      "norm_topk_prob false is not supported (reprise renormalizes the chosen experts' "
      "weights, as llama.cpp does)";
  EXPECT_EQ(with("norm_topk_prob", json(json::value_t::discarded)), topk);  // default false
  EXPECT_EQ(with("norm_topk_prob", false), topk);
  EXPECT_EQ(with("decoder_sparse_step", 2),
            e + "decoder_sparse_step other than 1 is not supported (every block must be a "
                "mixture of experts)");
  EXPECT_EQ(with("mlp_only_layers", json::array({1})),
            e + "mlp_only_layers is not supported (every block must be a mixture of experts)");
  EXPECT_EQ(with("use_sliding_window", true),
            e + "sliding_window is not supported for Qwen3MoeForCausalLM");
  EXPECT_EQ(with("num_experts_per_tok", 200),
            "FormatError: cfg/config.json: num_experts_per_tok 200 exceeds the 128 experts");
  EXPECT_EQ(with("moe_intermediate_size", json(json::value_t::discarded)),
            "FormatError: cfg/config.json: missing field moe_intermediate_size");
}

// Phi-4-mini's config.json: head 64 here, rope on 0.75 of it (48 dimensions, 24 pairs), longrope
// from 4096 to 131072 positions.
json phi4_like() {
  json c = arch_base("Phi3ForCausalLM");
  c["partial_rotary_factor"] = 0.75;
  c["max_position_embeddings"] = 131072;
  c["original_max_position_embeddings"] = 4096;
  std::vector<double> long_f, short_f;
  for (int i = 0; i < 24; ++i) {
    long_f.push_back(1.0 + i);
    short_f.push_back(1.0 + 0.5 * i);
  }
  c["rope_scaling"] = {{"type", "longrope"}, {"long_factor", long_f}, {"short_factor", short_f}};
  return c;
}

TEST(HfConfig, Phi4MiniPartialRotaryAndLongRope) {
  HParams hp = hparams_from_hf_config(phi4_like(), kSource);
  EXPECT_EQ(hp.head_dim, 64);
  EXPECT_EQ(hp.rotary_dims(), 48);
  ASSERT_EQ(hp.rope_long_factors.size(), 24u);
  ASSERT_EQ(hp.rope_short_factors.size(), 24u);
  EXPECT_EQ(hp.rope_long_factors[23], 24.0f);
  EXPECT_EQ(hp.rope_short_factors[23], 12.5f);
  EXPECT_EQ(hp.long_rope_orig_ctx(), 4096);
  EXPECT_TRUE(hp.rope_freq_factors.empty());
  // transformers' default: sqrt(1 + ln(131072 / 4096) / ln(4096)) = sqrt(1 + 5 / 12).
  EXPECT_FLOAT_EQ(hp.rope_attn_factor, 1.1902381f);
  // A config's own attention_factor wins.
  json c = phi4_like();
  c["rope_scaling"]["attention_factor"] = 1.5;
  EXPECT_EQ(hparams_from_hf_config(c, kSource).rope_attn_factor, 1.5f);
  // transformers 5: rope_parameters, which may carry the original context itself.
  c = phi4_like();
  c["rope_parameters"] = c["rope_scaling"];
  c["rope_parameters"].erase("type");
  c["rope_parameters"]["rope_type"] = "longrope";
  c["rope_parameters"]["rope_theta"] = 10000.0;
  c["rope_parameters"]["original_max_position_embeddings"] = 2048;
  c.erase("rope_scaling");
  c.erase("original_max_position_embeddings");
  hp = hparams_from_hf_config(c, kSource);
  EXPECT_EQ(hp.long_rope_orig_ctx(), 2048);
  EXPECT_EQ(hp.rope_long_factors.size(), 24u);

  const std::string fe = "FormatError: cfg/config.json: ";
  c = phi4_like();
  c["rope_scaling"]["long_factor"] = {1.0, 2.0, 3.0};
  EXPECT_EQ(
      error_of([&] { hparams_from_hf_config(c, kSource); }),
      fe + "field rope_scaling.long_factor has 3 factors, expected 24 (one per rotated pair)");
  c = phi4_like();
  c["rope_scaling"]["short_factor"][4] = -1.0;
  EXPECT_EQ(error_of([&] { hparams_from_hf_config(c, kSource); }),
            fe + "field rope_scaling.short_factor[4] is -1.0, expected a positive number");
  c = phi4_like();
  c.erase("original_max_position_embeddings");
  EXPECT_EQ(error_of([&] { hparams_from_hf_config(c, kSource); }),
            fe + "missing field original_max_position_embeddings (longrope scaling needs it)");
  c = phi4_like();
  c["partial_rotary_factor"] = 0.71;  // 45.44 -> 45 dimensions: not pairs
  EXPECT_EQ(error_of([&] { hparams_from_hf_config(c, kSource); }),
            fe + "partial_rotary_factor 0.71 rotates 45 of 64 head dimensions, not an even number "
                 "of them");
}

TEST(HfConfig, Phi3AndRefusals) {
  json c = arch_base("Phi3ForCausalLM");
  c["sliding_window"] = 2047;  // ignored, as llama.cpp ignores it for phi3
  HParams hp = hparams_from_hf_config(c, kSource);
  EXPECT_EQ(hp.arch, Arch::Phi3);
  EXPECT_EQ(hp.arch_name, "phi3");
  EXPECT_TRUE(hp.layers.empty());
  EXPECT_FLOAT_EQ(hp.rms_eps, 1e-5f);
  const std::string e = "Error: cfg/config.json: ";
  json d = llama_base();  // partial rotary is Phi-3's only
  d["partial_rotary_factor"] = 0.75;
  EXPECT_EQ(error_of([&] { hparams_from_hf_config(d, kSource); }),
            e + "partial_rotary_factor 0.75 is not supported (partial rope)");
  d = llama_base();
  d["rope_scaling"] = {{"type", "longrope"}, {"long_factor", {1.0}}, {"short_factor", {1.0}}};
  EXPECT_EQ(error_of([&] { hparams_from_hf_config(d, kSource); }),
            e + "rope scaling type longrope is not supported (supported: llama3)");
  d = c;
  d["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", 4.0}};
  EXPECT_EQ(error_of([&] { hparams_from_hf_config(d, kSource); }),
            e + "rope scaling type yarn is not supported (supported: llama3, longrope)");
  d = arch_base("Gemma3ForCausalLM");
  d["hidden_activation"] = "gelu";
  EXPECT_EQ(error_of([&] { hparams_from_hf_config(d, kSource); }),
            e + "hidden_activation gelu is not supported (supported: gelu_pytorch_tanh)");
  d = arch_base("Gemma3ForCausalLM");
  d["attn_logit_softcapping"] = 50.0;
  EXPECT_EQ(error_of([&] { hparams_from_hf_config(d, kSource); }),
            e + "attn_logit_softcapping is not supported for Gemma3ForCausalLM");
  d = arch_base("Gemma2ForCausalLM");
  d["layer_types"] = {"full_attention"};
  EXPECT_EQ(error_of([&] { hparams_from_hf_config(d, kSource); }),
            "FormatError: cfg/config.json: field layer_types must list 7 layers");
  d = arch_base("Gemma2ForCausalLM");
  d["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 2.0}};  // Gemma 3 only
  EXPECT_EQ(error_of([&] { hparams_from_hf_config(d, kSource); }),
            e + "rope scaling type linear is not supported (supported: llama3)");
}

// Qwen3.5 (Qwen3_5TextConfig's defaults and fields), flat or inside text_config.
json qwen35_text() {
  return json::parse(R"({
    "model_type": "qwen3_5_text", "vocab_size": 1000, "hidden_size": 256,
    "intermediate_size": 512, "num_hidden_layers": 8, "num_attention_heads": 4,
    "num_key_value_heads": 2
  })");
}

TEST(HfConfig, Qwen35Defaults) {
  json c = qwen35_text();
  c["architectures"] = {"Qwen3_5ForCausalLM"};
  const HParams hp = hparams_from_hf_config(c, kSource);
  EXPECT_EQ(hp.arch, Arch::Qwen35);
  EXPECT_EQ(hp.arch_name, "qwen35");
  EXPECT_EQ(hp.head_dim, 256);
  EXPECT_EQ(hp.rotary_dims(), 64);  // partial_rotary_factor 0.25
  EXPECT_EQ(hp.rope_sections, (std::vector<int>{11, 11, 10, 0}));
  EXPECT_EQ(hp.rope_theta, 10000.0f);
  EXPECT_EQ(hp.rope_style, RopeStyle::Neox);
  EXPECT_EQ(hp.n_ctx_train, 32768);
  EXPECT_FLOAT_EQ(hp.rms_eps, 1e-6f);
  EXPECT_TRUE(hp.qk_norm && hp.attn_out_gate && hp.hybrid());
  EXPECT_FALSE(hp.tied_output || hp.qkv_bias || hp.moe());
  EXPECT_EQ(hp.recurrent, (std::vector<bool>{true, true, true, false, true, true, true, false}));
  EXPECT_EQ(hp.delta.n_k_heads, 16);
  EXPECT_EQ(hp.delta.n_v_heads, 32);
  EXPECT_EQ(hp.delta.head_k_dim, 128);
  EXPECT_EQ(hp.delta.head_v_dim, 128);
  EXPECT_EQ(hp.delta.conv_kernel, 4);
  EXPECT_TRUE(hp.delta.v_heads_grouped);
  // Grouped value heads: 0 and 1 read key head 0, 2 and 3 key head 1 (tiled: 0, 1, 0, 1).
  EXPECT_EQ(hp.delta.key_head(1), 0);
  EXPECT_EQ(hp.delta.key_head(2), 1);
  DeltaNetShape tiled = hp.delta;
  tiled.v_heads_grouped = false;
  EXPECT_EQ(tiled.key_head(1), 1);
  EXPECT_EQ(tiled.key_head(16), 0);
}

TEST(HfConfig, Qwen35ConditionalGenerationReadsTextConfig) {
  json t = qwen35_text();
  t["layer_types"] = {"linear_attention", "full_attention",  "linear_attention",
                      "attention",        "mamba",           "full_attention",
                      "linear_attention", "linear_attention"};
  t["linear_num_key_heads"] = 2;
  t["linear_num_value_heads"] = 6;
  t["linear_key_head_dim"] = 32;
  t["linear_value_head_dim"] = 32;
  t["linear_conv_kernel_dim"] = 3;
  t["head_dim"] = 64;
  t["rope_parameters"] = {{"rope_type", "default"},
                          {"rope_theta", 10000000},
                          {"partial_rotary_factor", 0.5},
                          {"mrope_section", {6, 5, 5}},
                          {"mrope_interleaved", true}};
  const json c = {{"architectures", {"Qwen3_5ForConditionalGeneration"}},
                  {"model_type", "qwen3_5"},
                  {"tie_word_embeddings", true},
                  {"text_config", t},
                  {"vision_config", {{"depth", 27}}}};
  const HParams hp = hparams_from_hf_config(c, kSource);
  EXPECT_EQ(hp.arch, Arch::Qwen35);
  EXPECT_EQ(hp.n_layer, 8);
  EXPECT_EQ(hp.head_dim, 64);
  EXPECT_EQ(hp.rotary_dims(), 32);
  EXPECT_EQ(hp.rope_sections, (std::vector<int>{6, 5, 5, 0}));
  EXPECT_EQ(hp.rope_theta, 1e7f);
  EXPECT_TRUE(hp.tied_output);  // from the top level
  EXPECT_EQ(hp.recurrent, (std::vector<bool>{true, false, true, false, true, false, true, true}));
  EXPECT_EQ(hp.delta.n_k_heads, 2);
  EXPECT_EQ(hp.delta.n_v_heads, 6);
  EXPECT_EQ(hp.delta.key_head(2), 0);
  EXPECT_EQ(hp.delta.key_head(3), 1);
  EXPECT_EQ(hp.delta.head_k_dim, 32);
  EXPECT_EQ(hp.delta.conv_kernel, 3);
  // full_attention_interval when there are no layer_types.
  json d = c;
  d["text_config"].erase("layer_types");
  d["text_config"]["full_attention_interval"] = 2;
  EXPECT_EQ(hparams_from_hf_config(d, kSource).recurrent,
            (std::vector<bool>{true, false, true, false, true, false, true, false}));
}

// Variants reprise does not run, each refused in one line naming the class or field.
TEST(HfConfig, Qwen35Refusals) {
  const std::string e = "Error: cfg/config.json: ";
  const std::string fe = "FormatError: cfg/config.json: ";
  const std::string dense =
      ", which reprise does not run (dense Qwen3.5 is: Qwen3_5ForCausalLM, "
      "Qwen3_5ForConditionalGeneration)";
  EXPECT_EQ(parse_error(R"({"architectures": ["Qwen3_5MoeForConditionalGeneration"]})"),
            e +
                "architectures[0] Qwen3_5MoeForConditionalGeneration is a Qwen3.5 "
                "mixture-of-experts model" +
                dense);
  EXPECT_EQ(
      parse_error(R"({"architectures": ["Qwen3_5MoeForCausalLM"]})"),
      e + "architectures[0] Qwen3_5MoeForCausalLM is a Qwen3.5 mixture-of-experts model" + dense);
  EXPECT_EQ(
      parse_error(R"({"architectures": ["Qwen3NextForCausalLM"]})"),
      e + "architectures[0] Qwen3NextForCausalLM is a Qwen3-Next mixture-of-experts model" + dense);
  EXPECT_EQ(
      parse_error(R"({"model_type": "qwen3_5_vision", "depth": 27})"),
      e + "model_type qwen3_5_vision is a Qwen3.5 vision encoder config (no text model)" + dense);
  // A multimodal config without its text model (a vision-only config).
  EXPECT_EQ(parse_error(R"({"architectures": ["Qwen3_5ForConditionalGeneration"],
                            "vision_config": {"depth": 27}})"),
            fe + "missing field text_config (the text model of a "
                 "Qwen3_5ForConditionalGeneration, which reprise runs)");
  EXPECT_EQ(parse_error(R"({"architectures": ["Qwen3_5ForConditionalGeneration"],
                            "text_config": [1]})"),
            fe + "field text_config is an array, expected an object");

  auto nested = [](const std::function<void(json&)>& edit) {
    json t = qwen35_text();
    edit(t);
    const json c = {{"architectures", {"Qwen3_5ForConditionalGeneration"}}, {"text_config", t}};
    return error_of([&] { hparams_from_hf_config(c, kSource); });
  };
  EXPECT_EQ(nested([](json& t) { t["num_experts"] = 256; }),
            e + "text_config.num_experts is 256: a Qwen3.5 mixture-of-experts model is not "
                "supported (dense Qwen3.5 is)");
  EXPECT_EQ(nested([](json& t) { t["model_type"] = "qwen3_5_moe_text"; }),
            e + "text_config.model_type qwen3_5_moe_text: a Qwen3.5 mixture-of-experts model is "
                "not supported (dense Qwen3.5 is)");
  EXPECT_EQ(nested([](json& t) { t["attn_output_gate"] = false; }),
            e + "text_config.attn_output_gate false is not supported (reprise runs Qwen3.5's "
                "gated attention)");
  EXPECT_EQ(nested([](json& t) { t["attention_bias"] = true; }),
            e + "text_config.attention_bias true is not supported for "
                "Qwen3_5ForConditionalGeneration");
  EXPECT_EQ(nested([](json& t) { t["linear_value_head_dim"] = 64; }),
            e + "text_config.linear_value_head_dim 64 differs from text_config.linear_key_head_dim "
                "128 (unsupported)");
  EXPECT_EQ(nested([](json& t) { t["linear_num_value_heads"] = 24; }),
            fe + "linear_num_value_heads 24 is not a multiple of linear_num_key_heads 16");
  EXPECT_EQ(nested([](json& t) { t["layer_types"] = {"linear_attention"}; }),
            fe + "field text_config.layer_types must list 8 layers");
  EXPECT_EQ(nested([](json& t) {
              t["layer_types"] = json::array();
              for (int l = 0; l < 8; ++l) t["layer_types"].push_back("full_attention");
              t["layer_types"][5] = "sliding_attention";
            }),
            fe + "field text_config.layer_types[5] is \"sliding_attention\", expected "
                 "linear_attention or full_attention");
  EXPECT_EQ(nested([](json& t) { t["partial_rotary_factor"] = 0.001; }),
            fe + "partial_rotary_factor 0.001 of head_dim 256 is not a positive even number of "
                 "dimensions");
  EXPECT_EQ(nested([](json& t) {
              t["rope_parameters"] = {{"rope_type", "default"}, {"mrope_section", {11, -1, 10}}};
            }),
            fe + "field text_config.rope_parameters.mrope_section[1] is -1, expected a section of "
                 "at most 256 pairs");
  EXPECT_EQ(nested([](json& t) { t["hidden_size"] = "2048"; }),
            fe + "field text_config.hidden_size is a string, expected an integer");
  EXPECT_EQ(nested([](json& t) { t.erase("vocab_size"); }),
            fe + "missing field text_config.vocab_size");
}

}  // namespace
}  // namespace reprise
