#include "engine/layer_path.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "util/error.h"
#include "util/strings.h"

namespace reprise {
namespace {

constexpr int kMaxPathLength = 4096;
constexpr int kMaxRepeats = 64;

[[noreturn]] void fail(std::string_view spec, std::string_view token, const std::string& why,
                       int n_layer) {
  throw Error(fmt::format("layer path '{}': {} '{}' (the model has {} layers, 0..{})", spec, why,
                          token, n_layer, n_layer - 1));
}

// Splits "X@A" into X and the weight A (1 without "@").
std::string_view split_alpha(std::string_view spec, std::string_view tok, float& alpha,
                             int n_layer) {
  alpha = 1.0f;
  const size_t at = tok.find('@');
  if (at == std::string_view::npos) return tok;
  auto a = parse_alpha(tok.substr(at + 1));
  if (!a)
    fail(spec, tok, fmt::format("weight after @ must be a number in [0, {}] in", kMaxLayerAlpha),
         n_layer);
  alpha = *a;
  return trim(tok.substr(0, at));
}

LayerPath parse_shorthand(std::string_view spec, std::string_view body_in, bool is_repeat,
                          int n_layer) {
  float alpha = 1.0f;
  std::string_view body = split_alpha(spec, body_in, alpha, n_layer);
  if (!is_repeat && body_in.find('@') != std::string_view::npos)
    fail(spec, spec, "skip takes no weight (@) in", n_layer);
  auto parts = split(body, ':');
  std::string_view kind = is_repeat ? "repeat" : "skip";
  size_t want_max = is_repeat ? 3 : 2;
  if (parts.size() < 2 || parts.size() > want_max)
    fail(spec, spec, fmt::format("{} takes {}", kind, is_repeat ? "I:J or I:J:K" : "I:J"), n_layer);
  int i = 0, j = 0, k = 2;
  if (!parse_int(parts[0], i)) fail(spec, parts[0], "not a layer number", n_layer);
  if (!parse_int(parts[1], j)) fail(spec, parts[1], "not a layer number", n_layer);
  if (parts.size() == 3 && (!parse_int(parts[2], k) || k < 1 || k > kMaxRepeats))
    fail(spec, parts[2], fmt::format("repeat count must be 1..{}, got", kMaxRepeats), n_layer);
  if (i < 0 || i >= n_layer) fail(spec, parts[0], "start layer out of range", n_layer);
  if (j <= i || j > n_layer)
    fail(spec, parts[1], fmt::format("end must satisfy {} < J <= {}, got", i, n_layer), n_layer);
  if (is_repeat && n_layer + int64_t{k - 1} * (j - i) > kMaxPathLength)
    fail(spec, spec, fmt::format("path longer than {} positions in", kMaxPathLength), n_layer);
  return is_repeat ? LayerPath::repeat(n_layer, i, j, k, alpha) : LayerPath::skip(n_layer, i, j);
}

}  // namespace

std::string format_alpha(float a) {
  return fmt::format("{}", a);
}

std::optional<float> parse_alpha(std::string_view s) {
  s = trim(s);
  float a = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), a);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size() || !(a >= 0.0f) ||
      a > kMaxLayerAlpha)
    return std::nullopt;
  return a;
}

bool LayerPath::damped() const {
  for (float a : alpha)
    if (a != 1.0f) return true;
  return false;
}

bool LayerPath::operator==(const LayerPath& o) const {
  if (layers != o.layers) return false;
  for (int p = 0; p < size(); ++p)
    if (alpha_at(p) != o.alpha_at(p)) return false;
  return true;
}

LayerPath LayerPath::identity(int n_layer) {
  LayerPath p;
  for (int l = 0; l < n_layer; ++l) p.layers.push_back(l);
  return p;
}

LayerPath LayerPath::repeat(int n_layer, int i, int j, int times, float damp) {
  LayerPath p;
  for (int l = 0; l < j; ++l) p.layers.push_back(l);
  const size_t first_repeat = p.layers.size();
  for (int t = 1; t < times; ++t)
    for (int l = i; l < j; ++l) p.layers.push_back(l);
  const size_t after = p.layers.size();
  for (int l = j; l < n_layer; ++l) p.layers.push_back(l);
  if (damp != 1.0f) {
    p.alpha.assign(p.layers.size(), 1.0f);
    std::fill(p.alpha.begin() + first_repeat, p.alpha.begin() + after, damp);
  }
  return p;
}

LayerPath LayerPath::skip(int n_layer, int i, int j) {
  LayerPath p;
  for (int l = 0; l < n_layer; ++l)
    if (l < i || l >= j) p.layers.push_back(l);
  return p;
}

std::string LayerPath::canonical() const {
  if (layers.empty()) return "none";
  std::string out;
  for (size_t k = 0; k < layers.size();) {
    const float a = alpha_at(static_cast<int>(k));
    size_t e = k;
    while (e + 1 < layers.size() && layers[e + 1] == layers[e] + 1 &&
           alpha_at(static_cast<int>(e + 1)) == a)
      ++e;
    if (!out.empty()) out += ',';
    out += e > k ? fmt::format("{}..{}", layers[k], layers[e]) : std::to_string(layers[k]);
    if (a != 1.0f) out += fmt::format("@{}", format_alpha(a));
    k = e + 1;
  }
  return out;
}

LayerPath parse_layer_path(std::string_view spec_in, int n_layer) {
  std::string_view spec = trim(spec_in);
  if (spec.empty() || spec == "all" || spec == "identity" || spec == "plain")
    return LayerPath::identity(n_layer);
  if (spec == "none") return LayerPath{};
  if (spec.starts_with("repeat:"))
    return parse_shorthand(spec, spec.substr(7), /*is_repeat=*/true, n_layer);
  if (spec.starts_with("skip:"))
    return parse_shorthand(spec, spec.substr(5), /*is_repeat=*/false, n_layer);
  // A word before ':' is a shorthand we do not have (e.g. scan's config name "loop:2:4:3");
  // list the ones that exist.
  if (const size_t colon = spec.find(':'); colon != std::string_view::npos)
    throw Error(fmt::format(
        "layer path '{}': unknown form '{}:'; the forms are 'repeat:I:J[:K]' (block I..J-1 runs "
        "K times in all; scan's loop:I:J:K is repeat:I:J:K), 'skip:I:J', a list like "
        "'0..3,1..4', 'all' and 'none' (the model has {} layers, 0..{})",
        spec, spec.substr(0, colon), n_layer, n_layer - 1));

  LayerPath p;
  for (std::string_view raw : split(spec, ',')) {
    float alpha = 1.0f;
    std::string_view tok = split_alpha(spec, trim(raw), alpha, n_layer);
    if (tok.empty()) fail(spec, raw, "empty entry", n_layer);
    int a = 0, b = 0;
    if (size_t dots = tok.find(".."); dots != std::string_view::npos) {
      if (!parse_int(tok.substr(0, dots), a) || !parse_int(tok.substr(dots + 2), b))
        fail(spec, tok, "malformed range", n_layer);
      if (b < a) fail(spec, tok, "descending range", n_layer);
    } else if (!parse_int(tok, a)) {
      fail(spec, tok, "not a layer number", n_layer);
    } else {
      b = a;
    }
    if (a < 0 || a >= n_layer) fail(spec, tok, "layer out of range", n_layer);
    if (b >= n_layer) fail(spec, tok, "layer out of range", n_layer);
    if (p.size() + (b - a + 1) > kMaxPathLength)
      fail(spec, tok, fmt::format("path longer than {} positions at", kMaxPathLength), n_layer);
    for (int l = a; l <= b; ++l) p.layers.push_back(l);
    if (alpha != 1.0f || !p.alpha.empty()) {
      p.alpha.resize(p.layers.size() - (b - a + 1), 1.0f);
      p.alpha.resize(p.layers.size(), alpha);
    }
  }
  return p;
}

}  // namespace reprise
