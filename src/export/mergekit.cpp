#include "export/mergekit.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <charconv>
#include <optional>

#include "util/error.h"

namespace reprise::exporter {
namespace {

// ---------------------------------------------------------------------------------------------
// Reading: yaml-cpp parses; the recipe is then checked on this small tree, which keeps each
// value's line so every message can point at it.

struct Node {
  enum class Kind { Null, Scalar, Seq, Map };
  Kind kind = Kind::Null;
  std::string scalar;
  std::vector<Node> items;
  std::vector<std::pair<std::string, Node>> entries;
  int line = 0;  // 1-based; 0 when unknown

  const Node* get(std::string_view key) const {
    for (const auto& [k, v] : entries)
      if (k == key) return &v;
    return nullptr;
  }
};

std::string_view kind_name(Node::Kind k) {
  switch (k) {
    case Node::Kind::Null:
      return "empty";
    case Node::Kind::Scalar:
      return "a scalar";
    case Node::Kind::Seq:
      return "a list";
    case Node::Kind::Map:
      return "a mapping";
  }
  return "?";
}

[[noreturn]] void fail_at(const std::string& source, int line, const std::string& what) {
  if (line > 0) throw Error(fmt::format("{}:{}: {}", source, line, what));
  throw Error(fmt::format("{}: {}", source, what));
}

int line_of(const YAML::Mark& m) {
  return m.is_null() ? 0 : m.line + 1;
}

Node to_node(const YAML::Node& y, const std::string& source) {
  Node n;
  n.line = line_of(y.Mark());
  switch (y.Type()) {
    case YAML::NodeType::Scalar:
      n.kind = Node::Kind::Scalar;
      n.scalar = y.Scalar();
      break;
    case YAML::NodeType::Sequence:
      n.kind = Node::Kind::Seq;
      for (const YAML::Node& item : y) n.items.push_back(to_node(item, source));
      break;
    case YAML::NodeType::Map:
      n.kind = Node::Kind::Map;
      for (const auto& kv : y) {
        if (!kv.first.IsScalar())
          fail_at(source, line_of(kv.first.Mark()), "mapping keys must be scalars");
        const std::string key = kv.first.Scalar();
        // yaml-cpp keeps both entries of a repeated key; a recipe means one of them.
        if (n.get(key))
          fail_at(source, line_of(kv.first.Mark()), fmt::format("duplicate key '{}'", key));
        n.entries.emplace_back(key, to_node(kv.second, source));
      }
      break;
    default:
      break;  // null and undefined stay Null
  }
  return n;
}

Node read_yaml(std::string_view text, const std::string& source) {
  // yaml-cpp reports a tab in indentation as an "illegal block entry"; name the tab instead.
  int line = 1;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '\n') ++line;
    const bool at_line_start = i == 0 || text[i - 1] == '\n';
    if (!at_line_start) continue;
    size_t k = i;
    while (k < text.size() && text[k] == ' ') ++k;
    if (k < text.size() && text[k] == '\t')
      fail_at(source, line, "tab in indentation (YAML indents with spaces)");
  }
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(std::string(text));
  } catch (const YAML::Exception& e) {
    fail_at(source, line_of(e.mark), e.msg);
  }
  if (docs.size() > 1) fail_at(source, line_of(docs[1].Mark()), "more than one YAML document");
  return docs.empty() ? Node{} : to_node(docs[0], source);
}

// ---------------------------------------------------------------------------------------------
// Writing

// Plain when the text cannot be mistaken for YAML syntax or another type; double-quoted otherwise.
std::string yaml_scalar(const std::string& s) {
  bool plain = !s.empty() && s != "null" && s != "true" && s != "false" && s != "~" &&
               !std::isdigit(static_cast<unsigned char>(s[0]));
  for (char c : s)
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view("_./-+@~").find(c) != std::string_view::npos))
      plain = false;
  if (plain && (s[0] == '-' || s[0] == '~' || s[0] == '@')) plain = false;
  if (plain) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out + "\"";
}

std::optional<int> parse_index(const std::string& s) {
  int v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || v < 0) return std::nullopt;
  return v;
}

}  // namespace

std::vector<MergekitSlice> path_slices(const LayerPath& path, const std::string& model) {
  std::vector<MergekitSlice> out;
  for (int layer : path.layers) {
    if (!out.empty() && out.back().end == layer)
      ++out.back().end;
    else
      out.push_back({model, layer, layer + 1});
  }
  return out;
}

std::string mergekit_yaml(const LayerPath& path, const std::string& model,
                          const MergekitWriteOptions& opts) {
  if (path.layers.empty()) throw Error("mergekit export: the layer path is empty");
  std::string out;
  size_t start = 0;
  while (!opts.comment.empty() && start <= opts.comment.size()) {
    size_t end = opts.comment.find('\n', start);
    if (end == std::string::npos) end = opts.comment.size();
    out += fmt::format("# {}\n", opts.comment.substr(start, end - start));
    start = end + 1;
  }
  out += "slices:\n";
  for (const auto& s : path_slices(path, model))
    out += fmt::format("  - sources:\n      - model: {}\n        layer_range: [{}, {}]\n",
                       yaml_scalar(s.model), s.begin, s.end);
  out += "merge_method: passthrough\n";
  if (!opts.dtype.empty()) out += fmt::format("dtype: {}\n", yaml_scalar(opts.dtype));
  return out;
}

MergekitRecipe parse_mergekit_yaml(std::string_view text, const std::string& source) {
  const Node root = read_yaml(text, source);
  auto fail = [&](const Node& n, const std::string& what) -> void {
    fail_at(source, n.line, what);
  };
  if (root.kind != Node::Kind::Map) {
    if (root.kind == Node::Kind::Null) throw Error(fmt::format("{}: empty recipe", source));
    fail(root, fmt::format("the recipe is {}, expected a mapping", kind_name(root.kind)));
  }
  auto scalar = [&](const Node& n, const std::string& what) {
    if (n.kind != Node::Kind::Scalar)
      fail(n, fmt::format("{} is {}, expected a scalar", what, kind_name(n.kind)));
    return n.scalar;
  };

  MergekitRecipe r;
  const Node* slices = nullptr;
  for (const auto& [key, value] : root.entries) {
    if (key == "merge_method") {
      r.merge_method = scalar(value, "merge_method");
    } else if (key == "dtype") {
      r.dtype = scalar(value, "dtype");
    } else if (key == "slices") {
      slices = &value;
    } else if (key == "models") {
      fail(value,
           "'models' recipes merge weights; only passthrough 'slices' describe a layer path");
    } else if (key != "out_dtype" && key != "base_model" && key != "tokenizer_source" &&
               key != "tokenizer" && key != "chat_template" && key != "name") {
      fail(value, fmt::format("unknown key '{}'", key));
    }
  }
  if (r.merge_method.empty()) throw Error(fmt::format("{}: missing merge_method", source));
  if (r.merge_method != "passthrough")
    fail(*root.get("merge_method"),
         fmt::format("merge_method is {}, expected passthrough (only layer stacking describes a "
                     "layer path)",
                     r.merge_method));
  if (!slices) throw Error(fmt::format("{}: missing slices", source));
  if (slices->kind != Node::Kind::Seq || slices->items.empty())
    fail(*slices, fmt::format("slices is {}, expected a non-empty list", kind_name(slices->kind)));

  for (size_t k = 0; k < slices->items.size(); ++k) {
    const Node& slice = slices->items[k];
    const std::string name = fmt::format("slice {}", k + 1);
    if (slice.kind != Node::Kind::Map) fail(slice, fmt::format("{} is not a mapping", name));
    const Node* sources = nullptr;
    for (const auto& [key, value] : slice.entries) {
      if (key == "sources")
        sources = &value;
      else
        fail(value, fmt::format("{}: unsupported key '{}'", name, key));
    }
    if (!sources) fail(slice, fmt::format("{} has no sources", name));
    if (sources->kind != Node::Kind::Seq || sources->items.size() != 1)
      fail(*sources, fmt::format("{}: passthrough needs exactly one source per slice", name));
    const Node& src = sources->items[0];
    if (src.kind != Node::Kind::Map)
      fail(src, fmt::format("{}: the source is not a mapping", name));
    MergekitSlice s;
    const Node* range = nullptr;
    for (const auto& [key, value] : src.entries) {
      if (key == "model")
        s.model = scalar(value, name + " model");
      else if (key == "layer_range")
        range = &value;
      else
        fail(value, fmt::format("{}: unsupported source key '{}' (a layer path copies layers "
                                "unchanged)",
                                name, key));
    }
    if (s.model.empty()) fail(src, fmt::format("{}: the source names no model", name));
    if (!range) fail(src, fmt::format("{}: the source has no layer_range", name));
    if (range->kind != Node::Kind::Seq || range->items.size() != 2)
      fail(*range, fmt::format("{}: layer_range must be a list of two layer numbers", name));
    auto b = range->items[0].kind == Node::Kind::Scalar ? parse_index(range->items[0].scalar)
                                                        : std::nullopt;
    auto e = range->items[1].kind == Node::Kind::Scalar ? parse_index(range->items[1].scalar)
                                                        : std::nullopt;
    if (!b || !e)
      fail(*range, fmt::format("{}: layer_range must be a list of two layer numbers", name));
    if (*b >= *e)
      fail(*range, fmt::format("{}: layer_range [{}, {}] is empty (it is half-open: [begin, end))",
                               name, *b, *e));
    s.begin = *b;
    s.end = *e;
    r.slices.push_back(std::move(s));
  }
  return r;
}

LayerPath recipe_path(const MergekitRecipe& recipe, const std::string& source, int n_layer) {
  LayerPath path;
  if (recipe.slices.empty()) throw Error(fmt::format("{}: the recipe has no slices", source));
  for (size_t k = 0; k < recipe.slices.size(); ++k) {
    const MergekitSlice& s = recipe.slices[k];
    if (s.model != recipe.slices[0].model)
      throw Error(
          fmt::format("{}: slice {} takes layers from {}, slice 1 from {}; a layer path "
                      "runs a single model",
                      source, k + 1, s.model, recipe.slices[0].model));
    if (n_layer > 0 && s.end > n_layer)
      throw Error(
          fmt::format("{}: slice {} layer_range [{}, {}] goes past the model's {} layers "
                      "(0..{})",
                      source, k + 1, s.begin, s.end, n_layer, n_layer - 1));
    for (int l = s.begin; l < s.end; ++l) path.layers.push_back(l);
  }
  return path;
}

}  // namespace reprise::exporter
