#include "export/mergekit.h"

#include <fmt/format.h>

#include <charconv>
#include <optional>

#include "util/error.h"

namespace reprise::exporter {
namespace {

// ---------------------------------------------------------------------------------------------
// A small YAML reader: enough for mergekit recipes written by hand or by tools. Block mappings
// and sequences by indentation, flow [..] / {..} on one line, plain and quoted scalars, comments.
// Anchors, tags, multi-line scalars and multi-document streams are refused with a message rather
// than misread.

struct Node {
  enum class Kind { Null, Scalar, Seq, Map };
  Kind kind = Kind::Null;
  std::string scalar;
  std::vector<Node> items;
  std::vector<std::pair<std::string, Node>> entries;
  int line = 0;

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

struct Line {
  int no = 0;      // 1-based line number in the source
  int indent = 0;  // leading spaces
  std::string text;
};

class YamlReader {
 public:
  YamlReader(std::string_view text, const std::string& source) : source_(source) { split(text); }

  Node document() {
    if (lines_.empty()) return Node{};
    Node root = block(lines_[0].indent);
    if (pos_ < lines_.size()) fail(lines_[pos_].no, "unexpected indentation");
    return root;
  }

  [[noreturn]] void fail(int line, const std::string& what) const {
    throw Error(fmt::format("{}:{}: {}", source_, line, what));
  }

 private:
  // Splits into non-blank lines with comments removed.
  void split(std::string_view text) {
    int no = 0;
    size_t start = 0;
    while (start <= text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string_view::npos) end = text.size();
      std::string_view raw = text.substr(start, end - start);
      start = end + 1;
      ++no;
      if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
      size_t indent = 0;
      while (indent < raw.size() && raw[indent] == ' ') ++indent;
      std::string body = strip_comment(raw.substr(indent), no);
      while (!body.empty() && (body.back() == ' ' || body.back() == '\t')) body.pop_back();
      if (body.empty()) continue;
      if (raw.substr(0, indent + 1).find('\t') != std::string_view::npos || body[0] == '\t')
        fail(no, "tab in indentation (YAML indents with spaces)");
      if (indent == 0 && (body == "---" || body.starts_with("--- "))) {
        if (seen_document_) fail(no, "more than one YAML document");
        seen_document_ = true;
        if (body != "---") fail(no, "content after the document marker");
        continue;
      }
      if (indent == 0 && (body == "..." || body[0] == '%'))
        fail(no, "YAML directives are not supported");
      lines_.push_back({no, static_cast<int>(indent), std::move(body)});
      if (start > text.size()) break;
    }
  }

  // A '#' starts a comment at the line start or after a space, outside quotes.
  std::string strip_comment(std::string_view s, int no) const {
    char quote = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      const char c = s[i];
      if (quote) {
        if (c == '\\' && quote == '"')
          ++i;
        else if (c == quote)
          quote = 0;
      } else if (c == '"' || c == '\'') {
        // Quotes only open a scalar at its start, not inside a plain word like don't.
        if (i == 0 || std::string_view(" [{,:-").find(s[i - 1]) != std::string_view::npos)
          quote = c;
      } else if (c == '#' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t')) {
        return std::string(s.substr(0, i));
      }
    }
    if (quote) fail(no, "unterminated quoted string");
    return std::string(s);
  }

  static bool is_item(const std::string& t) { return t == "-" || t.starts_with("- "); }

  // Position of the ':' that ends a mapping key, or npos.
  static size_t key_colon(const std::string& t) {
    if (t.empty() || t[0] == '[' || t[0] == '{') return std::string::npos;
    size_t i = 0;
    if (t[0] == '"' || t[0] == '\'') {
      const char q = t[0];
      for (i = 1; i < t.size() && t[i] != q; ++i)
        if (q == '"' && t[i] == '\\') ++i;
      ++i;
    }
    for (; i < t.size(); ++i)
      if (t[i] == ':' && (i + 1 == t.size() || t[i + 1] == ' ')) return i;
    return std::string::npos;
  }

  Node block(int indent) {
    const Line& l = lines_[pos_];
    if (is_item(l.text)) return sequence(indent);
    if (key_colon(l.text) != std::string::npos) return mapping(indent);
    Node n = inline_value(l.text, l.no);
    ++pos_;
    if (pos_ < lines_.size() && lines_[pos_].indent > indent)
      fail(lines_[pos_].no, "multi-line scalars are not supported");
    return n;
  }

  Node sequence(int indent) {
    Node seq;
    seq.kind = Node::Kind::Seq;
    seq.line = lines_[pos_].no;
    while (pos_ < lines_.size() && lines_[pos_].indent == indent && is_item(lines_[pos_].text)) {
      Line& l = lines_[pos_];
      size_t skip = 1;
      while (skip < l.text.size() && l.text[skip] == ' ') ++skip;
      if (skip == l.text.size()) {
        ++pos_;
        if (pos_ < lines_.size() && lines_[pos_].indent > indent)
          seq.items.push_back(block(lines_[pos_].indent));
        else
          seq.items.push_back(Node{Node::Kind::Null, {}, {}, {}, l.no});
        continue;
      }
      // "- key: value" opens a mapping whose later keys align with "key".
      l.indent = indent + static_cast<int>(skip);
      l.text.erase(0, skip);
      seq.items.push_back(block(l.indent));
    }
    if (pos_ < lines_.size() && lines_[pos_].indent > indent)
      fail(lines_[pos_].no, "unexpected indentation");
    return seq;
  }

  Node mapping(int indent) {
    Node map;
    map.kind = Node::Kind::Map;
    map.line = lines_[pos_].no;
    while (pos_ < lines_.size() && lines_[pos_].indent == indent) {
      const Line l = lines_[pos_];
      if (is_item(l.text)) fail(l.no, "a list item where a mapping key was expected");
      const size_t colon = key_colon(l.text);
      if (colon == std::string::npos)
        fail(l.no, fmt::format("expected 'key: value', got '{}'", l.text));
      std::string key_text = l.text.substr(0, colon);
      while (!key_text.empty() && key_text.back() == ' ') key_text.pop_back();
      const Node key = inline_value(key_text, l.no);
      if (key.kind != Node::Kind::Scalar) fail(l.no, "mapping keys must be scalars");
      if (map.get(key.scalar)) fail(l.no, fmt::format("duplicate key '{}'", key.scalar));
      size_t v = colon + 1;
      while (v < l.text.size() && l.text[v] == ' ') ++v;
      ++pos_;
      Node value;
      value.line = l.no;
      if (v < l.text.size()) {
        value = inline_value(l.text.substr(v), l.no);
      } else if (pos_ < lines_.size() && lines_[pos_].indent > indent) {
        value = block(lines_[pos_].indent);
      } else if (pos_ < lines_.size() && lines_[pos_].indent == indent &&
                 is_item(lines_[pos_].text)) {
        value = sequence(indent);  // "key:\n- a" : a list may sit at its key's indentation
      }
      value.line = l.no;  // messages about a value point at its key
      map.entries.emplace_back(key.scalar, std::move(value));
      if (pos_ < lines_.size() && lines_[pos_].indent > indent)
        fail(lines_[pos_].no, "unexpected indentation");
    }
    return map;
  }

  // A value written on one line: a flow collection or a scalar.
  Node inline_value(std::string_view s, int no) {
    size_t i = 0;
    Node n = flow(s, i, no, /*in_flow=*/false);
    while (i < s.size() && s[i] == ' ') ++i;
    if (i != s.size()) fail(no, fmt::format("unexpected '{}' after a value", s.substr(i)));
    return n;
  }

  Node flow(std::string_view s, size_t& i, int no, bool in_flow) {
    while (i < s.size() && s[i] == ' ') ++i;
    Node n;
    n.line = no;
    if (i == s.size()) return n;
    const char c = s[i];
    if (c == '[' || c == '{') {
      const bool is_map = c == '{';
      const char close = is_map ? '}' : ']';
      n.kind = is_map ? Node::Kind::Map : Node::Kind::Seq;
      ++i;
      for (;;) {
        while (i < s.size() && s[i] == ' ') ++i;
        if (i == s.size())
          fail(no, fmt::format("unclosed '{}' (flow collections must fit on one line)", c));
        if (s[i] == close) {
          ++i;
          return n;
        }
        if (is_map) {
          Node key = flow_scalar(s, i, no, /*key=*/true);
          while (i < s.size() && s[i] == ' ') ++i;
          if (i == s.size() || s[i] != ':') fail(no, "expected ':' in a flow mapping");
          ++i;
          Node value = flow(s, i, no, true);
          if (n.get(key.scalar)) fail(no, fmt::format("duplicate key '{}'", key.scalar));
          n.entries.emplace_back(key.scalar, std::move(value));
        } else {
          n.items.push_back(flow(s, i, no, true));
        }
        while (i < s.size() && s[i] == ' ') ++i;
        if (i < s.size() && s[i] == ',') {
          ++i;
        } else if (i == s.size() || s[i] != close) {
          fail(no, fmt::format("expected ',' or '{}' in a flow collection", close));
        }
      }
    }
    if (c == '&' || c == '*' || c == '!') fail(no, "anchors, aliases and tags are not supported");
    if (c == '|' || c == '>') fail(no, "block scalars (| and >) are not supported");
    if (!in_flow) {
      // Outside a flow collection a plain scalar runs to the end of the line.
      if (c == '"' || c == '\'') return flow_scalar(s, i, no, false);
      n.kind = Node::Kind::Scalar;
      n.scalar = std::string(s.substr(i));
      i = s.size();
      return n;
    }
    return flow_scalar(s, i, no, false);
  }

  Node flow_scalar(std::string_view s, size_t& i, int no, bool key) {
    Node n;
    n.kind = Node::Kind::Scalar;
    n.line = no;
    if (i < s.size() && (s[i] == '"' || s[i] == '\'')) {
      const char q = s[i++];
      for (;;) {
        if (i >= s.size()) fail(no, "unterminated quoted string");
        const char c = s[i++];
        if (c == q) {
          if (q == '\'' && i < s.size() && s[i] == '\'') {  // '' is a quote inside '...'
            n.scalar += '\'';
            ++i;
            continue;
          }
          break;
        }
        if (q == '"' && c == '\\') {
          if (i >= s.size()) fail(no, "unterminated quoted string");
          const char e = s[i++];
          switch (e) {
            case 'n':
              n.scalar += '\n';
              break;
            case 't':
              n.scalar += '\t';
              break;
            case '\\':
              n.scalar += '\\';
              break;
            case '"':
              n.scalar += '"';
              break;
            case '/':
              n.scalar += '/';
              break;
            default:
              fail(no, fmt::format("unsupported escape '\\{}'", e));
          }
          continue;
        }
        n.scalar += c;
      }
      return n;
    }
    const size_t start = i;
    while (i < s.size() && s[i] != ',' && s[i] != ']' && s[i] != '}' && !(key && s[i] == ':')) ++i;
    std::string_view v = s.substr(start, i - start);
    while (!v.empty() && v.back() == ' ') v.remove_suffix(1);
    n.scalar = std::string(v);
    return n;
  }

  const std::string& source_;
  std::vector<Line> lines_;
  size_t pos_ = 0;
  bool seen_document_ = false;
};

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
  YamlReader reader(text, source);
  const Node root = reader.document();
  auto fail = [&](const Node& n, const std::string& what) -> void { reader.fail(n.line, what); };
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
