#include "model/hf_tokenizer.h"

#include <fmt/format.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <unordered_map>

#include "util/error.h"

namespace reprise {
namespace {

using nlohmann::json;

constexpr std::string_view kSpace = "\xE2\x96\x81";  // U+2581

// Split regexes of the byte-level tokenizers we can reproduce, exactly as tokenizer.json spells
// them, and the GGUF pre-tokenizer name each corresponds to.
constexpr std::pair<std::string_view, std::string_view> kKnownSplits[] = {
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "llama-bpe"},
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "qwen2"},
    // Qwen3.5: as Qwen2, with combining marks (\p{M}) counted as part of a word.
    {R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?[\p{L}\p{M}]+|\p{N}| ?[^\s\p{L}\p{M}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)",
     "qwen35"},
};

// Names the three input files in messages.
struct Sources {
  std::string tokenizer, config, special;
};

json parse_json(std::string_view text, const std::string& source) {
  try {
    return json::parse(text);
  } catch (const json::exception& e) {
    throw FormatError(source, fmt::format("invalid JSON: {}", e.what()));
  }
}

std::optional<std::string> read_file(const std::filesystem::path& p) {
  std::ifstream f(p, std::ios::binary);
  if (!f) return std::nullopt;
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Calls fn on every node of a normalizer / pre-tokenizer / decoder tree ("Sequence" nodes
// nest their children under `key`).
template <typename Fn>
void walk(const json& node, const char* key, Fn&& fn) {
  if (!node.is_object()) return;
  fn(node);
  auto it = node.find(key);
  if (it != node.end() && it->is_array())
    for (const json& child : *it) walk(child, key, fn);
}

std::string type_of(const json& node) {
  auto it = node.find("type");
  return it != node.end() && it->is_string() ? it->get<std::string>() : "";
}

// bos_token and friends are either a string or an AddedToken object {"content": ...}.
std::optional<std::string> token_text(const json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v["content"].is_string())
    return v["content"].get<std::string>();
  return std::nullopt;
}

class HfVocabBuilder {
 public:
  HfVocabBuilder(const json& tok, const json& config, const json& special, Sources src)
      : tok_(tok), config_(config), special_(special), src_(std::move(src)) {}

  Vocab build() {
    const json& model = object_field(tok_, "model", src_.tokenizer);
    const std::string type = type_of(model);
    if (!type.empty() && type != "BPE")
      fail(fmt::format("model.type \"{}\" is not supported (only BPE)", type));
    read_tokens(model);
    const bool byte_level = has_node("ByteLevel");
    const bool byte_fallback = model.value("byte_fallback", false);
    if (byte_level) {
      vocab_.model = Vocab::Model::Bpe;
      vocab_.merges = read_merges(model);
      vocab_.pre = pre_tokenizer_name();
      vocab_.add_space_prefix = false;
    } else if (byte_fallback || has_node("Metaspace") || normalizer_prepends_space()) {
      vocab_.model = Vocab::Model::Spm;
      mark_byte_tokens(byte_fallback);
      vocab_.scores = scores_from_merges(read_merges(model));
      vocab_.add_space_prefix = spm_adds_space_prefix();
    } else {
      fail(
          "BPE model is neither byte-level nor SentencePiece-style (no ByteLevel, Metaspace or "
          "byte_fallback)");
    }
    read_special_tokens(model);
    read_flags();
    read_chat_template();
    check_vocab(vocab_, src_.tokenizer);
    return std::move(vocab_);
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw FormatError(src_.tokenizer, what); }

  static const json& object_field(const json& j, const char* key, const std::string& source) {
    auto it = j.find(key);
    if (it == j.end() || !it->is_object())
      throw FormatError(source, fmt::format("missing object \"{}\"", key));
    return *it;
  }

  // model.vocab plus added_tokens; ids not used by either become unused "[PADn]" slots, as the
  // GGUF converter writes them.
  void read_tokens(const json& model) {
    const json& vocab = object_field(model, "vocab", src_.tokenizer);
    std::vector<std::pair<std::string, int64_t>> entries;
    entries.reserve(vocab.size());
    for (auto it = vocab.begin(); it != vocab.end(); ++it) {
      if (!it.value().is_number_integer() || it.value().get<int64_t>() < 0)
        fail(fmt::format("model.vocab[\"{}\"] is not a token id", it.key()));
      entries.emplace_back(it.key(), it.value().get<int64_t>());
    }
    std::vector<std::tuple<std::string, int64_t, bool>> added;
    if (auto it = tok_.find("added_tokens"); it != tok_.end() && it->is_array()) {
      for (const json& a : *it) {
        if (!a.is_object() || !a.contains("id") || !a["id"].is_number_integer() ||
            a["id"].get<int64_t>() < 0 || !a.contains("content") || !a["content"].is_string())
          fail("added_tokens has an entry without a valid id and content");
        added.emplace_back(a["content"].get<std::string>(), a["id"].get<int64_t>(),
                           a.value("special", false));
      }
    }
    int64_t n = 0;
    for (const auto& e : entries) n = std::max(n, e.second + 1);
    for (const auto& a : added) n = std::max(n, std::get<1>(a) + 1);
    if (n == 0) fail("model.vocab is empty");
    if (n > (int64_t{1} << 24)) fail(fmt::format("token id {} is implausibly large", n - 1));
    // Unused ids become "[PADn]" slots; a few hundred bytes of JSON must not be able to demand
    // millions of them (real vocabularies are dense: gaps are reserved ranges, far fewer than the
    // tokens themselves).
    const int64_t defined = static_cast<int64_t>(entries.size() + added.size());
    if (n - defined > std::max<int64_t>(4096, defined))
      fail(fmt::format("token ids go up to {} but only {} tokens are defined", n - 1, defined));

    vocab_.tokens.resize(n);
    vocab_.attrs.assign(n, TokenAttr::Unused);
    for (int64_t i = 0; i < n; ++i) vocab_.tokens[i] = fmt::format("[PAD{}]", i);
    for (auto& [text, id] : entries) {
      vocab_.tokens[id] = std::move(text);
      vocab_.attrs[id] = TokenAttr::Normal;
    }
    for (auto& [text, id, special] : added) {
      vocab_.tokens[id] = std::move(text);
      vocab_.attrs[id] = special ? TokenAttr::Control : TokenAttr::UserDefined;
    }
  }

  // Merges as "left right"; tokenizer.json writes either that or ["left", "right"].
  std::vector<std::string> read_merges(const json& model) const {
    std::vector<std::string> merges;
    auto it = model.find("merges");
    if (it == model.end() || !it->is_array()) return merges;
    merges.reserve(it->size());
    for (size_t i = 0; i < it->size(); ++i) {
      const json& m = (*it)[i];
      if (m.is_string()) {
        const std::string s = m.get<std::string>();
        const size_t sp = s.size() > 1 ? s.find(' ', 1) : std::string::npos;
        if (sp == std::string::npos || sp + 1 >= s.size())
          fail(fmt::format("model.merges[{}] \"{}\" is not two pieces separated by a space", i, s));
        merges.push_back(s);
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        // Merges are kept as "left right" (as GGUF stores them), which cannot hold an empty piece
        // or one with a space.
        const std::string left = m[0].get<std::string>(), right = m[1].get<std::string>();
        if (left.empty() || right.empty() || left.find(' ') != std::string::npos ||
            right.find(' ') != std::string::npos)
          fail(fmt::format("model.merges[{}] {} has an empty piece or a piece with a space", i,
                           m.dump()));
        merges.push_back(left + " " + right);
      } else {
        fail(fmt::format("model.merges[{}] is neither \"a b\" nor [\"a\", \"b\"]", i));
      }
    }
    return merges;
  }

  // SentencePiece merges the adjacent pair whose joined token scores highest. Giving each token
  // the negated rank of the first merge that builds it makes that the lowest-rank merge, as BPE
  // would pick. Multi-character tokens no merge builds get the lowest score so they are formed
  // last (BPE would never form them at all).
  std::vector<float> scores_from_merges(const std::vector<std::string>& merges) const {
    const float kNever = -1e9f;
    std::vector<float> scores(vocab_.tokens.size(), kNever);
    std::unordered_map<std::string_view, int32_t> ids;
    for (size_t i = 0; i < vocab_.tokens.size(); ++i)
      ids[vocab_.tokens[i]] = static_cast<int32_t>(i);
    std::vector<bool> seen(vocab_.tokens.size(), false);
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      std::string joined = merges[rank];
      joined.erase(joined.find(' ', 1), 1);
      auto it = ids.find(joined);
      if (it == ids.end() || seen[it->second]) continue;
      seen[it->second] = true;
      scores[it->second] = -static_cast<float>(rank);
    }
    return scores;
  }

  void mark_byte_tokens(bool byte_fallback) {
    if (!byte_fallback) return;
    for (size_t i = 0; i < vocab_.tokens.size(); ++i) {
      const std::string& t = vocab_.tokens[i];
      if (vocab_.attrs[i] == TokenAttr::Normal && t.size() == 6 && t.starts_with("<0x") &&
          t.back() == '>')
        vocab_.attrs[i] = TokenAttr::Byte;
    }
  }

  bool has_node(const std::string& type) const {
    bool found = false;
    auto check = [&](const json& n) { found = found || type_of(n) == type; };
    if (auto it = tok_.find("pre_tokenizer"); it != tok_.end()) walk(*it, "pretokenizers", check);
    if (auto it = tok_.find("decoder"); it != tok_.end()) walk(*it, "decoders", check);
    return found;
  }

  bool normalizer_prepends_space() const {
    bool found = false;
    auto check = [&](const json& n) {
      found = found || (type_of(n) == "Prepend" && n.value("prepend", "") == kSpace);
    };
    if (auto it = tok_.find("normalizer"); it != tok_.end()) walk(*it, "normalizers", check);
    return found;
  }

  bool spm_adds_space_prefix() const {
    if (normalizer_prepends_space()) return true;
    bool prefix = false;
    auto check = [&](const json& n) {
      if (type_of(n) != "Metaspace") return;
      if (n.contains("prepend_scheme") && n["prepend_scheme"].is_string())
        prefix = n["prepend_scheme"].get<std::string>() != "never";
      else
        prefix = n.value("add_prefix_space", true);
    };
    if (auto it = tok_.find("pre_tokenizer"); it != tok_.end()) walk(*it, "pretokenizers", check);
    return prefix;
  }

  // The GGUF pre-tokenizer name whose regex equals the Split pattern; plain ByteLevel (which
  // splits with GPT-2's regex itself) is "gpt2", and Digits (one by one) then ByteLevel "smollm".
  std::string pre_tokenizer_name() const {
    std::vector<std::string> splits;
    bool byte_level_regex = false;
    bool single_digits = false;  // Digits with individual_digits: SmolLM's first step
    auto check = [&](const json& n) {
      const std::string t = type_of(n);
      if (t == "Digits") {
        if (!n.value("individual_digits", false))
          fail("pre_tokenizer Digits without individual_digits is not supported");
        single_digits = true;
      } else if (t == "Split") {
        const json& pattern = n.contains("pattern") ? n["pattern"] : json();
        if (pattern.is_object() && pattern.contains("Regex") && pattern["Regex"].is_string())
          splits.push_back(pattern["Regex"].get<std::string>());
        else
          fail("pre_tokenizer Split without a Regex pattern is not supported");
      } else if (t == "ByteLevel") {
        byte_level_regex = byte_level_regex || n.value("use_regex", true);
        if (n.value("add_prefix_space", false))
          fail("pre_tokenizer ByteLevel with add_prefix_space is not supported");
      } else if (t != "Sequence") {
        fail(fmt::format("pre_tokenizer {} is not supported", t.empty() ? "(untyped)" : t));
      }
    };
    if (auto it = tok_.find("pre_tokenizer"); it != tok_.end()) walk(*it, "pretokenizers", check);
    if (single_digits) {
      if (!splits.empty() || !byte_level_regex)
        fail("pre_tokenizer Digits is supported only before a plain ByteLevel (SmolLM)");
      return "smollm";
    }
    if (splits.empty()) {
      if (byte_level_regex) return "gpt2";
      fail("byte-level BPE without a pre-tokenizer regex is not supported");
    }
    if (splits.size() > 1 || byte_level_regex)
      fail("pre_tokenizer with several splitting regexes is not supported");
    for (const auto& [regex, name] : kKnownSplits)
      if (splits[0] == regex) return std::string(name);
    fail(fmt::format(
        "pre_tokenizer Split regex is not one we recognise (known: Llama 3, Qwen2, Qwen3.5); "
        "it begins \"{}\"",
        splits[0].substr(0, 40)));
  }

  // tokenizer_config.json first, then special_tokens_map.json, then (for unk) the model.
  std::optional<std::string> special_text(const char* key) const {
    for (const json* j : {&config_, &special_})
      if (j->is_object() && j->contains(key))
        if (auto t = token_text((*j)[key])) return t;
    return std::nullopt;
  }

  int32_t special_id(const char* key, std::optional<std::string> text) const {
    if (!text) return -1;
    for (int32_t id = 0; id < vocab_.size(); ++id)
      if (vocab_.tokens[id] == *text) return id;
    throw FormatError(src_.config, fmt::format("{} \"{}\" is not in the vocabulary", key, *text));
  }

  void read_special_tokens(const json& model) {
    vocab_.bos = special_id("bos_token", special_text("bos_token"));
    vocab_.eos = special_id("eos_token", special_text("eos_token"));
    vocab_.pad = special_id("pad_token", special_text("pad_token"));
    auto unk = special_text("unk_token");
    if (!unk && model.contains("unk_token")) unk = token_text(model["unk_token"]);
    vocab_.unk = special_id("unk_token", unk);
    if (vocab_.unk >= 0 && vocab_.attrs[vocab_.unk] != TokenAttr::UserDefined)
      vocab_.attrs[vocab_.unk] = TokenAttr::Unknown;
    vocab_.eot = guess_eot_token(vocab_);
  }

  // Whether the post-processor's single-sequence template starts (front) or ends with token id.
  bool template_adds(int32_t id, bool front) const {
    if (id < 0) return false;
    bool adds = false;
    auto check = [&](const json& n) {
      if (type_of(n) != "TemplateProcessing" || !n.contains("single") || !n["single"].is_array())
        return;
      const json& single = n["single"];
      if (single.empty()) return;
      const json& item = front ? single.front() : single.back();
      if (item.contains("SpecialToken") && item["SpecialToken"].is_object())
        adds = adds || item["SpecialToken"].value("id", "") == vocab_.tokens[id];
    };
    if (auto it = tok_.find("post_processor"); it != tok_.end()) walk(*it, "processors", check);
    return adds;
  }

  void read_flags() {
    const bool spm = vocab_.model == Vocab::Model::Spm;
    auto flag = [&](const char* key) -> std::optional<bool> {
      if (config_.is_object() && config_.contains(key) && config_[key].is_boolean())
        return config_[key].get<bool>();
      return std::nullopt;
    };
    vocab_.add_bos = flag("add_bos_token").value_or(template_adds(vocab_.bos, true) || spm);
    vocab_.add_eos = flag("add_eos_token").value_or(template_adds(vocab_.eos, false));
    if (vocab_.add_bos && vocab_.bos < 0)
      throw FormatError(src_.config, "add_bos_token is set but there is no bos_token");
    if (vocab_.add_eos && vocab_.eos < 0)
      throw FormatError(src_.config, "add_eos_token is set but there is no eos_token");
  }

  // A string, or a list of {"name", "template"} of which "default" (else the first) is used.
  void read_chat_template() {
    if (!config_.is_object() || !config_.contains("chat_template")) return;
    const json& t = config_["chat_template"];
    if (t.is_string()) {
      vocab_.chat_template = t.get<std::string>();
    } else if (t.is_array()) {
      for (const json& e : t) {
        if (!e.is_object() || !e.contains("template") || !e["template"].is_string()) continue;
        if (vocab_.chat_template.empty() || e.value("name", "") == "default")
          vocab_.chat_template = e["template"].get<std::string>();
      }
    }
  }

  const json& tok_;
  const json& config_;
  const json& special_;
  Sources src_;
  Vocab vocab_;
};

Vocab build(std::string_view tokenizer_json, std::string_view config_json,
            std::string_view special_json, Sources src) {
  const json tok = parse_json(tokenizer_json, src.tokenizer);
  if (!tok.is_object()) throw FormatError(src.tokenizer, "not a JSON object");
  const json config = config_json.empty() ? json() : parse_json(config_json, src.config);
  const json special = special_json.empty() ? json() : parse_json(special_json, src.special);
  return HfVocabBuilder(tok, config, special, std::move(src)).build();
}

}  // namespace

Vocab vocab_from_hf_json(std::string_view tokenizer_json, std::string_view config_json,
                         std::string_view special_tokens_json, const std::string& source) {
  const std::filesystem::path dir = std::filesystem::path(source).parent_path();
  return build(tokenizer_json, config_json, special_tokens_json,
               {source, (dir / "tokenizer_config.json").string(),
                (dir / "special_tokens_map.json").string()});
}

std::optional<Vocab> vocab_from_hf_dir(const std::filesystem::path& dir) {
  const auto tok_path = dir / "tokenizer.json";
  const auto tok = read_file(tok_path);
  if (!tok) return std::nullopt;
  const auto config = read_file(dir / "tokenizer_config.json").value_or("");
  const auto special = read_file(dir / "special_tokens_map.json").value_or("");
  Vocab v = vocab_from_hf_json(*tok, config, special, tok_path.string());
  // Newer checkpoints keep the template in its own file.
  if (v.chat_template.empty())
    if (auto jinja = read_file(dir / "chat_template.jinja")) v.chat_template = *jinja;
  return v;
}

}  // namespace reprise
