#include "export/export.h"
#include "format/tensor_type.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <numbers>
#include <sstream>

#include "export/hf_files.h"
#include "export/mergekit.h"
#include "export/plan.h"
#include "format/gguf.h"
#include "format/gguf_writer.h"
#include "format/safetensors.h"
#include "format/safetensors_writer.h"
#include "model/hf_config.h"
#include "model/vocab.h"
#include "util/error.h"
#include "util/output_file.h"
#include "util/strings.h"
#include "util/thread_pool.h"

namespace reprise::exporter {
namespace fs = std::filesystem;
using nlohmann::json;
using nlohmann::ordered_json;

namespace {

bool is_float_type(TensorType t) {
  return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16;
}

// ---------------------------------------------------------------------------------------------
// GGUF metadata

GgufValue string_value(std::string s) {
  return GgufValue::of_string(std::move(s));
}

// An integer in the type the source used for the key (u32 when new).
GgufValue int_like(const GgufValue* old, int64_t v) {
  GgufValue out;
  out.type = old && !old->is_array() && old->type != GgufType::STRING &&
                     old->type != GgufType::F32 && old->type != GgufType::F64 &&
                     old->type != GgufType::BOOL
                 ? old->type
                 : GgufType::U32;
  out.i = v;
  return out;
}

// Per-layer array `v` of a source with n_layer blocks, reordered along the path.
GgufValue along_path(const GgufValue& v, const LayerPath& path) {
  GgufValue out = v;
  auto pick = [&](auto& dst, const auto& src) {
    dst.clear();
    for (int l : path.layers) dst.push_back(src[static_cast<size_t>(l)]);
  };
  if (!v.ints.empty()) pick(out.ints, v.ints);
  if (!v.floats.empty()) pick(out.floats, v.floats);
  if (!v.strings.empty()) pick(out.strings, v.strings);
  if (!v.arrays.empty()) pick(out.arrays, v.arrays);
  return out;
}

template <typename T, typename F>
GgufValue array_of(GgufType elem, const std::vector<T>& items, F convert) {
  GgufValue v;
  v.type = GgufType::ARRAY;
  v.elem = elem;
  for (const auto& x : items) {
    if constexpr (std::is_same_v<T, std::string>)
      v.strings.push_back(convert(x));
    else if (elem == GgufType::F32 || elem == GgufType::F64)
      v.floats.push_back(convert(x));
    else
      v.ints.push_back(convert(x));
  }
  return v;
}

// The type most matrices of the plan have (that of the first block's Q projection).
TensorType main_matrix_type(const Plan& plan) {
  for (const auto& t : plan.tensors)
    if (t.role.ends_with("attn_q.weight")) return t.type;
  return plan.tensors.front().type;
}

void set_vocab_metadata(GgufWriter& w, const Vocab& v) {
  if (v.model == Vocab::Model::None) return;
  const bool spm = v.model == Vocab::Model::Spm;
  w.set("tokenizer.ggml.model", string_value(spm ? "llama" : "gpt2"));
  if (!v.pre.empty()) w.set("tokenizer.ggml.pre", string_value(v.pre));
  w.set("tokenizer.ggml.tokens",
        array_of(GgufType::STRING, v.tokens, [](const std::string& s) { return s; }));
  if (!v.scores.empty())
    w.set("tokenizer.ggml.scores",
          array_of(GgufType::F32, v.scores, [](float x) { return static_cast<double>(x); }));
  w.set("tokenizer.ggml.token_type",
        array_of(GgufType::I32, v.attrs, [](TokenAttr a) { return static_cast<int64_t>(a); }));
  if (!v.merges.empty())
    w.set("tokenizer.ggml.merges",
          array_of(GgufType::STRING, v.merges, [](const std::string& s) { return s; }));
  const std::pair<const char*, int32_t> ids[] = {{"tokenizer.ggml.bos_token_id", v.bos},
                                                 {"tokenizer.ggml.eos_token_id", v.eos},
                                                 {"tokenizer.ggml.unknown_token_id", v.unk},
                                                 {"tokenizer.ggml.padding_token_id", v.pad},
                                                 {"tokenizer.ggml.eot_token_id", v.eot}};
  for (const auto& [key, id] : ids)
    if (id >= 0) w.set(key, GgufValue::of_u32(static_cast<uint32_t>(id)));
  w.set("tokenizer.ggml.add_bos_token", GgufValue::of_bool(v.add_bos));
  w.set("tokenizer.ggml.add_eos_token", GgufValue::of_bool(v.add_eos));
  if (spm) w.set("tokenizer.ggml.add_space_prefix", GgufValue::of_bool(v.add_space_prefix));
  if (!v.chat_template.empty()) w.set("tokenizer.chat_template", string_value(v.chat_template));
}

std::string default_name(const Model& m, const LayerPath& path) {
  return fmt::format("{} (reprise layer path {})", m.name(), path.canonical());
}

void gguf_metadata(GgufWriter& w, const Model& m, const LayerPath& path, const Plan& plan,
                   const ExportOptions& o) {
  const HParams& hp = m.hparams();
  const std::string a = hp.arch_name + ".";
  const bool quantized_out = [&] {
    for (const auto& t : plan.tensors)
      if (!is_float_type(t.type)) return true;
    return false;
  }();
  std::optional<uint32_t> file_type;
  if (o.type.kind == TypeSpec::Kind::Q4_K_M)
    file_type = kLlamaFileTypeQ4_K_M;
  else if (o.type.kind == TypeSpec::Kind::Fixed)
    file_type = llama_file_type(o.type.type);

  if (const GgufFile* g = m.gguf()) {
    // Everything the source says (tokenizer, chat template, rope settings, ...) is kept; only
    // what depends on the block list changes.
    w.copy_metadata(*g);
    for (const auto& [key, value] : g->metadata())
      if (key.starts_with(a) && value.is_array() &&
          value.array_size() == static_cast<size_t>(hp.n_layer))
        w.set(key, along_path(value, path));
    w.set(a + "block_count", int_like(g->find(a + "block_count"), path.size()));
    // Sliding-window layers (Gemma): each copy keeps its source layer's kind, written as one
    // flag per block (llama.cpp reads the array form of the pattern before any period), and
    // llama.cpp gives every sliding layer the SWA rope base, so the rope bases follow too.
    // Qwen3.5: each copy keeps its source layer's kind (llama.cpp reads the per-block
    // recurrent_layers flags before full_attention_interval); MTP layers are not exported.
    if (hp.hybrid()) {
      GgufValue flags;
      flags.type = GgufType::ARRAY;
      flags.elem = GgufType::BOOL;
      for (int l : path.layers) flags.ints.push_back(hp.is_recurrent(l) ? 1 : 0);
      w.set(a + "attention.recurrent_layers", flags);
      if (g->find(a + "nextn_predict_layers"))
        w.set(a + "nextn_predict_layers", GgufValue::of_u32(0));
    }
    // (Mistral's layers all slide: its window key, copied above, says so for any block list.)
    if (hp.arch == Arch::Gemma2 || hp.arch == Arch::Gemma3) {
      GgufValue flags;
      flags.type = GgufType::ARRAY;
      flags.elem = GgufType::BOOL;
      for (int l : path.layers) flags.ints.push_back(hp.layer_attn(l).window > 0 ? 1 : 0);
      w.set(a + "attention.sliding_window_pattern", flags);
    }
  } else {
    w.set("general.architecture", string_value(hp.arch_name));
    w.set(a + "context_length", GgufValue::of_u32(static_cast<uint32_t>(hp.n_ctx_train)));
    w.set(a + "embedding_length", GgufValue::of_u32(static_cast<uint32_t>(hp.n_embd)));
    w.set(a + "block_count", GgufValue::of_u32(static_cast<uint32_t>(path.size())));
    w.set(a + "feed_forward_length", GgufValue::of_u32(static_cast<uint32_t>(hp.n_ff)));
    w.set(a + "attention.head_count", GgufValue::of_u32(static_cast<uint32_t>(hp.n_head)));
    w.set(a + "attention.head_count_kv", GgufValue::of_u32(static_cast<uint32_t>(hp.n_head_kv)));
    w.set(a + "attention.key_length", GgufValue::of_u32(static_cast<uint32_t>(hp.head_dim)));
    w.set(a + "attention.value_length", GgufValue::of_u32(static_cast<uint32_t>(hp.head_dim)));
    w.set(a + "rope.dimension_count", GgufValue::of_u32(static_cast<uint32_t>(hp.rotary_dims())));
    w.set(a + "rope.freq_base", GgufValue::of_f32(hp.rope_theta));
    if (!hp.rope_long_factors.empty() || !hp.rope_short_factors.empty()) {
      w.set(a + "rope.scaling.original_context_length",
            GgufValue::of_u32(static_cast<uint32_t>(hp.long_rope_orig_ctx())));
      w.set(a + "rope.scaling.attn_factor", GgufValue::of_f32(hp.rope_attn_factor));
    }
    w.set(a + "attention.layer_norm_rms_epsilon", GgufValue::of_f32(hp.rms_eps));
    w.set(a + "vocab_size", GgufValue::of_u32(static_cast<uint32_t>(hp.n_vocab)));
    if (!file_type) file_type = llama_file_type(main_matrix_type(plan));
    if (m.tokenizer()) set_vocab_metadata(w, m.tokenizer()->vocab());
  }
  w.set("general.name", string_value(o.name.empty() ? default_name(m, path) : o.name));
  if (file_type) w.set("general.file_type", GgufValue::of_u32(*file_type));
  if (quantized_out && !w.find("general.quantization_version"))
    w.set("general.quantization_version", GgufValue::of_u32(2));
  // Provenance: which layers of which model this file's blocks are.
  w.set("reprise.layer_path", string_value(path.canonical()));
  w.set("reprise.source_block_count", GgufValue::of_u32(static_cast<uint32_t>(hp.n_layer)));
}

void export_gguf(const Model& m, const LayerPath& path, const fs::path& out, const ExportOptions& o,
                 ExportResult& res, ThreadPool& pool) {
  Plan plan = make_plan(m, path, Layout::Gguf, o.type);
  GgufWriter w(m.gguf() ? static_cast<uint32_t>(m.gguf()->alignment()) : 32);
  gguf_metadata(w, m, path, plan, o);
  for (const PlannedTensor& t : plan.tensors) {
    if (o.alias && t.same_as >= 0) {
      w.add_alias(t.name, plan.tensors[static_cast<size_t>(t.same_as)].name);
    } else if (t.verbatim()) {
      w.add_tensor(t.name, t.type, t.shape, t.src->data);
    } else {
      w.add_tensor(t.name, t.type, t.shape,
                   [&t, &pool](std::span<std::byte> bytes) { produce(t, bytes, pool); });
    }
  }
  w.write(out, o.force);
  res.files.push_back(out);
  res.tensor_bytes = w.data_bytes();
  res.n_tensors = static_cast<int>(plan.tensors.size());
  res.notes = plan.notes;
}

// ---------------------------------------------------------------------------------------------
// Hugging Face config.json

std::string torch_dtype(TensorType t) {
  switch (t) {
    case TensorType::F16:
      return "float16";
    case TensorType::BF16:
      return "bfloat16";
    default:
      return "float32";
  }
}

// Llama 3 rope scaling recovered from the per-frequency divisors a GGUF stores (rope_freqs),
// so that transformers recomputes the same divisors. nullopt when every divisor is 1.
std::optional<ordered_json> llama3_scaling(const std::vector<float>& f, const HParams& hp,
                                           int original_ctx, const std::string& source) {
  const int half = static_cast<int>(f.size());
  const double factor = f.back();  // the longest wavelength is scaled fully
  bool all_one = true;
  for (float x : f) all_one = all_one && x == 1.0f;
  if (all_one) return std::nullopt;
  auto fail = [&](const std::string& why) {
    return Error(
        fmt::format("{}: rope_freqs.weight {}; cannot express it as Hugging Face "
                    "rope_scaling",
                    source, why));
  };
  if (!(factor > 1)) throw fail("does not grow towards long wavelengths");
  auto wavelen = [&](int i) {
    return 2 * std::numbers::pi /
           std::pow(static_cast<double>(hp.rope_theta), -2.0 * i / hp.head_dim);
  };
  // The divisors blend 1 and factor with weight s = (orig / wavelen - low) / (high - low), i.e.
  // s is linear in 1 / wavelen: fit that line through the blended frequencies.
  const double tol = 1e-6;
  std::vector<std::pair<double, double>> band;  // (1 / wavelen, s)
  int last_one = -1, first_full = half;
  for (int i = 0; i < half; ++i) {
    if (std::abs(f[i] - 1.0) <= tol)
      last_one = i;
    else if (std::abs(f[i] - factor) <= tol * factor)
      first_full = std::min(first_full, i);
    else
      band.emplace_back(1 / wavelen(i), (1 / f[i] - 1 / factor) / (1 - 1 / factor));
  }
  const double orig = original_ctx;
  double low, high;
  if (band.size() >= 2) {
    double sx = 0, sy = 0, sxx = 0, sxy = 0;
    for (auto [x, y] : band) sx += x, sy += y, sxx += x * x, sxy += x * y;
    const double n = static_cast<double>(band.size());
    const double slope = (n * sxy - sx * sy) / (n * sxx - sx * sx), icpt = (sy - slope * sx) / n;
    if (!(slope > 0)) throw fail("does not follow the Llama 3 curve");
    const double width = orig / slope;  // high - low
    low = -icpt * width;
    high = low + width;
  } else if (band.empty() && last_one >= 0 && first_full < half && last_one < first_full) {
    // No blended frequency: any band between the last unscaled and the first scaled one works.
    const double a = wavelen(last_one), b = wavelen(first_full);
    high = orig / (std::pow(a, 2.0 / 3) * std::pow(b, 1.0 / 3));
    low = orig / (std::pow(a, 1.0 / 3) * std::pow(b, 2.0 / 3));
  } else {
    throw fail("does not follow the Llama 3 curve");
  }
  if (!(low > 0) || !(high > low)) throw fail("does not follow the Llama 3 curve");
  const auto again = llama3_rope_freq_factors(hp.head_dim, hp.rope_theta, factor, low, high, orig);
  for (int i = 0; i < half; ++i)
    if (std::abs(again[i] - f[i]) > 1e-5 * std::max(1.0f, f[i]))
      throw fail(
          fmt::format("does not follow the Llama 3 curve (divisor {} is {}, the fit "
                      "gives {})",
                      i, f[i], again[i]));
  return ordered_json{{"rope_type", "llama3"},
                      {"factor", factor},
                      {"low_freq_factor", low},
                      {"high_freq_factor", high},
                      {"original_max_position_embeddings", original_ctx}};
}

ordered_json config_from_gguf(const Model& m, const LayerPath& path, const Plan& plan) {
  const HParams& hp = m.hparams();
  const GgufFile& g = *m.gguf();
  static const std::map<Arch, std::pair<const char*, const char*>> kNames = {
      {Arch::Llama, {"LlamaForCausalLM", "llama"}},
      {Arch::Qwen2, {"Qwen2ForCausalLM", "qwen2"}},
      {Arch::Qwen3, {"Qwen3ForCausalLM", "qwen3"}}};
  const auto& [cls, type] = kNames.at(hp.arch);
  ordered_json c;
  c["architectures"] = {cls};
  c["model_type"] = type;
  c["vocab_size"] = hp.n_vocab;
  c["hidden_size"] = hp.n_embd;
  c["intermediate_size"] = hp.n_ff;
  c["num_hidden_layers"] = path.size();
  c["num_attention_heads"] = hp.n_head;
  c["num_key_value_heads"] = hp.n_head_kv;
  c["head_dim"] = hp.head_dim;
  c["hidden_act"] = "silu";
  c["max_position_embeddings"] = hp.n_ctx_train;
  // Floats are written from the float values the GGUF holds, so reading them back as float
  // gives the same bits.
  c["rms_norm_eps"] = static_cast<double>(hp.rms_eps);
  c["rope_theta"] = static_cast<double>(hp.rope_theta);
  c["rope_scaling"] = nullptr;
  if (!hp.rope_freq_factors.empty()) {
    const int orig = static_cast<int>(
        g.get_int(hp.arch_name + ".rope.scaling.original_context_length").value_or(8192));
    if (auto s = llama3_scaling(hp.rope_freq_factors, hp, orig, g.path())) c["rope_scaling"] = *s;
  }
  c["tie_word_embeddings"] = plan.tied_output;
  if (hp.arch != Arch::Qwen2) c["attention_bias"] = false;
  if (hp.arch == Arch::Llama) c["mlp_bias"] = false;
  if (const Tokenizer* tok = m.tokenizer()) {
    if (tok->vocab().bos >= 0) c["bos_token_id"] = tok->vocab().bos;
    if (tok->vocab().eos >= 0) c["eos_token_id"] = tok->vocab().eos;
  }
  c["torch_dtype"] = torch_dtype(main_matrix_type(plan));
  c["use_cache"] = true;
  return c;
}

ordered_json config_from_hf(const Model& m, const LayerPath& path, const Plan& plan,
                            const ExportOptions& o) {
  const HParams& hp = m.hparams();
  // Keep the source config as written (key order too), changing what the block list decides.
  ordered_json c = ordered_json::parse(m.safetensors()->config().dump());
  for (auto& [key, value] : c.items())
    if (value.is_array() && value.size() == static_cast<size_t>(hp.n_layer) &&
        key != "architectures") {
      ordered_json v = ordered_json::array();
      for (int l : path.layers) v.push_back(value[static_cast<size_t>(l)]);
      value = std::move(v);
    }
  c["num_hidden_layers"] = path.size();
  if (plan.tied_output) c["tie_word_embeddings"] = true;
  if (o.type.kind != TypeSpec::Kind::Keep) {
    c["torch_dtype"] = torch_dtype(main_matrix_type(plan));
    if (c.contains("dtype")) c["dtype"] = c["torch_dtype"];  // transformers 5 spelling
  }
  return c;
}

// ---------------------------------------------------------------------------------------------
// Small files

std::string read_small_file(const fs::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) throw Error(fmt::format("{}: cannot read", p.string()));
  std::ostringstream ss;
  ss << f.rdbuf();
  if (!f && !f.eof()) throw Error(fmt::format("{}: read failed", p.string()));
  return ss.str();
}

void write_small_file(const fs::path& p, const std::string& text, bool overwrite) {
  OutputFile out(p, overwrite);
  out.write(text.data(), text.size());
  out.commit();
}

void export_hf(const Model& m, const LayerPath& path, const fs::path& out, const ExportOptions& o,
               ExportResult& res, ThreadPool& pool) {
  if (o.alias)
    throw Error(
        "--alias applies to GGUF only: safetensors readers require each tensor's bytes "
        "to be its own");
  Plan plan = make_plan(m, path, Layout::Hf, o.type);
  const ordered_json config =
      m.gguf() ? config_from_gguf(m, path, plan) : config_from_hf(m, path, plan, o);
  // Validate what we are about to write with the same reader that will load it.
  hparams_from_hf_config(json::parse(config.dump()), (out / "config.json").string());

  SafetensorsWriter w;
  for (const PlannedTensor& t : plan.tensors) {
    if (t.verbatim())
      w.add_tensor(t.name, t.type, t.shape, t.src->data);
    else
      w.add_tensor(t.name, t.type, t.shape,
                   [&t, &pool](std::span<std::byte> bytes) { produce(t, bytes, pool); });
  }
  OutputDir dir(out, o.force, is_export_file_name, "an HF export");
  try {
    for (const auto& f : w.write_sharded(dir.dir(), o.max_shard_bytes)) res.files.push_back(f);
    write_small_file(dir.dir() / "config.json", config.dump(2) + "\n", false);
    res.files.push_back("config.json");
    if (m.safetensors()) {
      for (const std::string_view name : hf_side_files()) {
        const fs::path src = m.safetensors()->dir() / name;
        std::error_code ec;
        if (!fs::is_regular_file(src, ec)) continue;
        write_small_file(dir.dir() / name, read_small_file(src), /*overwrite=*/false);
        res.files.emplace_back(name);
      }
    } else {
      plan.notes.push_back(
          "no tokenizer files: reprise does not convert a GGUF vocabulary to tokenizer.json");
    }
  } catch (const Error& e) {
    // Name the file where the user will look for it, not inside the temporary directory.
    std::string msg = e.what();
    const std::string temp = dir.dir().string();
    if (msg.starts_with(temp)) msg = out.string() + msg.substr(temp.size());
    throw Error(msg);
  }
  dir.commit();
  res.tensor_bytes = w.data_bytes();
  res.n_tensors = static_cast<int>(plan.tensors.size());
  res.notes = plan.notes;
}

// ---------------------------------------------------------------------------------------------
// mergekit

void export_mergekit(const Model& m, const LayerPath& path, const fs::path& out,
                     const ExportOptions& o, ExportResult& res) {
  if (o.alias) throw Error("--alias applies to GGUF only");
  // mergekit's passthrough could scale tensors by filter, but reprise's recipe reader (and so the
  // round trip the recipe is checked by) knows only plain layer_range slices.
  if (path.damped())
    throw Error(
        fmt::format("layer path '{}': a mergekit recipe cannot carry damped (@) positions; export "
                    "--format gguf or hf, which scale attn_output and ffn_down by the weight",
                    path.canonical()));
  MergekitWriteOptions w;
  // dtype: what the merged checkpoint should be stored as; quantized sources name none.
  if (o.type.kind == TypeSpec::Kind::Fixed && is_float_type(o.type.type)) {
    w.dtype = torch_dtype(o.type.type);
  } else if (o.type.kind != TypeSpec::Kind::Keep) {
    throw Error(
        fmt::format("--type {}: a mergekit recipe can only name F32, F16 or BF16", o.type.name));
  } else if (is_float_type(m.weights().blocks.front().wq.type)) {
    w.dtype = torch_dtype(m.weights().blocks.front().wq.type);
  }
  const std::string model_ref = o.model_ref.empty() ? m.path() : o.model_ref;
  w.comment = fmt::format("reprise export: layer path {} of {} ({} blocks from {})",
                          path.canonical(), m.name(), path.size(), m.hparams().n_layer);
  if (m.gguf() && o.model_ref.empty()) {
    // mergekit would fail on the GGUF only when run; say now what it needs and how to get it.
    const std::string hf_dir = fs::path(m.path()).stem().string() + "-hf";
    const std::string how = fmt::format(
        "mergekit cannot read GGUF files, it needs the Hugging Face weights: make them with "
        "`reprise export -m {} --format hf -o {}` and name that folder as `model:` (or export "
        "the recipe with --mergekit-model {})",
        m.path(), hf_dir, hf_dir);
    w.comment += "\n" + how;
    res.notes.push_back(how);
  }
  const std::string text = mergekit_yaml(path, model_ref, w);
  // Reading the recipe back must give the path, or the file would describe another model.
  const std::string source = out.string();
  if (recipe_path(parse_mergekit_yaml(text, source), source) != path)
    throw Error(fmt::format("{}: internal error: the recipe does not reproduce the path", source));
  write_small_file(out, text, o.force);
  res.files.push_back(out);
}

void export_exl3(const LayerPath& path, const fs::path& out, const ExportOptions& o,
                 ExportResult& res) {
  if (o.alias) throw Error("--alias applies to GGUF only");
  if (o.type.kind != TypeSpec::Kind::Keep)
    throw Error(fmt::format("--type {}: a layer_map names layers, not tensor types", o.type.name));
  write_small_file(out, exl3_layer_map(path) + "\n", o.force);
  res.files.push_back(out);
}

// The architectures config_from_gguf and the HF tensor names cover.
bool hf_writable(const HParams& hp) {
  return !hp.moe() && (hp.arch == Arch::Llama || hp.arch == Arch::Qwen2 || hp.arch == Arch::Qwen3);
}

// The architecture as a user would name it: Mixtral-style files say "llama".
std::string arch_label(const HParams& hp) {
  return hp.moe() && hp.arch == Arch::Llama ? "llama mixture-of-experts (Mixtral-style)"
                                            : hp.arch_name;
}

}  // namespace

std::string exl3_layer_map(const LayerPath& path) {
  if (path.layers.empty()) throw Error("exl3 export: the layer path is empty");
  if (path.damped())
    throw Error(fmt::format(
        "layer path '{}': an ExLlamaV3 layer_map cannot carry damped (@) positions; export "
        "--format gguf or hf, which scale attn_output and ffn_down by the weight",
        path.canonical()));
  return path.canonical();
}

Format parse_format(std::string_view name) {
  const std::string n = to_lower(name);
  if (n == "gguf") return Format::Gguf;
  if (n == "hf" || n == "safetensors") return Format::Hf;
  if (n == "mergekit" || n == "yaml") return Format::Mergekit;
  if (n == "exl3" || n == "layer_map") return Format::Exl3;
  throw Error(
      fmt::format("--format: unknown format '{}' (formats: gguf, hf, mergekit, exl3)", name));
}

std::optional<Format> format_from_output(const fs::path& out) {
  const std::string ext = to_lower(out.extension().string());
  if (ext == ".gguf") return Format::Gguf;
  if (ext == ".yaml" || ext == ".yml") return Format::Mergekit;
  return std::nullopt;
}

TypeSpec parse_type_spec(std::string_view name) {
  const std::string n = to_lower(name);
  TypeSpec s;
  s.name = std::string(name);
  if (n == "keep") return s;
  if (n == "q4_k_m") {
    s.kind = TypeSpec::Kind::Q4_K_M;
    s.name = "Q4_K_M";
    return s;
  }
  static constexpr TensorType kFixed[] = {
      TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,   TensorType::Q4_0,
      TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::IQ4_NL, TensorType::Q2_K,
      TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,   TensorType::IQ4_XS};
  if (auto t = tensor_type_from_name(n))
    for (TensorType k : kFixed)
      if (*t == k) {
        s.kind = TypeSpec::Kind::Fixed;
        s.type = k;
        s.name = std::string(info(k).name);
        return s;
      }
  throw Error(
      fmt::format("--type: unknown type '{}' (types: keep, F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
                  "Q5_0, Q5_1, IQ4_NL, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, IQ4_XS, Q4_K_M)",
                  name));
}

ExportResult export_model(const Model& m, const LayerPath& path, const fs::path& out,
                          const ExportOptions& o) {
  const int n_layer = m.hparams().n_layer;
  if (path.layers.empty()) throw Error("export: the layer path is empty");
  for (int l : path.layers)
    if (l < 0 || l >= n_layer)
      throw Error(
          fmt::format("layer path '{}': layer out of range '{}' (the model has {} layers, "
                      "0..{})",
                      path.canonical(), l, n_layer, n_layer - 1));
  if (out.empty()) throw Error("-o: no output path given");
  // The plan names HF tensors of the dense llama family only (no experts, fused matrices or
  // Gemma's (1 + w) norms), so an HF checkpoint of another architecture would lose weights.
  // A layer map or recipe names layers only, which is fine unless layers differ in kind (Gemma,
  // Qwen3.5 hybrids).
  const bool names_layers_only = o.format == Format::Mergekit || o.format == Format::Exl3;
  if (m.safetensors() && !hf_writable(m.hparams()) &&
      (!names_layers_only || !m.hparams().layers.empty() || m.hparams().hybrid())) {
    static constexpr const char* kFormatNames[] = {"gguf", "hf", "mergekit", "exl3"};
    throw Error(fmt::format(
        "export: a Hugging Face {} checkpoint cannot be exported as --format {} yet{}; convert "
        "it to GGUF first (llama.cpp's convert_hf_to_gguf.py)",
        arch_label(m.hparams()), kFormatNames[static_cast<int>(o.format)],
        m.hparams().layers.empty() && !m.hparams().hybrid() ? " (mergekit and exl3 can)" : ""));
  }
  if (m.hparams().hybrid() && o.format != Format::Gguf)
    throw Error(
        fmt::format("export: only --format gguf can export a {} model yet (its "
                    "linear-attention and full-attention layers must keep their kinds "
                    "along the path)",
                    m.hparams().arch_name));
  if (!m.hparams().layers.empty() && o.format != Format::Gguf)
    throw Error(fmt::format(
        "export: only --format gguf can export a {} model yet (its sliding-window and global "
        "layers must keep their kinds along the path)",
        m.hparams().arch_name));
  if (o.format == Format::Hf && !hf_writable(m.hparams()))
    throw Error(fmt::format(
        "export: --format hf cannot write a {} model yet (reprise writes Hugging Face checkpoints "
        "of dense llama, qwen2 and qwen3 models); use --format gguf",
        arch_label(m.hparams())));
  if (o.format == Format::Mergekit && m.gguf() && o.model_ref.empty() && !hf_writable(m.hparams()))
    throw Error(fmt::format(
        "export: --format mergekit of a GGUF {} model needs --mergekit-model naming its Hugging "
        "Face checkpoint (mergekit reads HF weights only, and reprise cannot write this "
        "architecture as HF yet)",
        arch_label(m.hparams())));
  // A smollm3 file's no-rope blocks are fixed by their index, so a block may only land where
  // the file format gives it its source layer's kind.
  if (m.hparams().arch == Arch::SmolLM3)
    for (int p = 0; p < path.size(); ++p)
      if (smollm3_block_has_rope(p) != smollm3_block_has_rope(path.layers[p]))
        throw Error(fmt::format(
            "export: layer path '{}' puts smollm3 layer {} ({}) at block {}, which a smollm3 "
            "file runs {} (every fourth block is without rope)",
            path.canonical(), path.layers[p],
            smollm3_block_has_rope(path.layers[p]) ? "with rope" : "without rope", p,
            smollm3_block_has_rope(p) ? "with rope" : "without rope"));
  ExportResult res;
  ThreadPool pool(o.n_threads > 0 ? o.n_threads : ThreadPool::default_threads());
  switch (o.format) {
    case Format::Gguf:
      export_gguf(m, path, out, o, res, pool);
      break;
    case Format::Hf:
      export_hf(m, path, out, o, res, pool);
      break;
    case Format::Mergekit:
      export_mergekit(m, path, out, o, res);
      break;
    case Format::Exl3:
      export_exl3(path, out, o, res);
      break;
  }
  return res;
}

}  // namespace reprise::exporter
