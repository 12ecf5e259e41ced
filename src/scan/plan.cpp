#include "scan/plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "util/error.h"
#include "util/strings.h"

namespace reprise::scan {

std::string mode_name(Mode m) {
  switch (m) {
    case Mode::Baseline:
      return "baseline";
    case Mode::Repeat:
      return "repeat";
    case Mode::Loop:
      return "loop";
    case Mode::Skip:
      return "skip";
    case Mode::Multi:
      return "multi";
  }
  return "?";
}

namespace {

int int_option(std::string_view text, const char* flag) {
  int v = 0;
  if (!parse_int(text, v)) throw Error(fmt::format("{}: '{}' is not a whole number", flag, text));
  return v;
}

Range range_option(const std::string& text, const char* flag) {
  const auto ends = split(text, ':');
  if (ends.size() != 2) throw Error(fmt::format("{} takes a:b, got '{}'", flag, text));
  return {int_option(ends[0], flag), int_option(ends[1], flag)};
}

}  // namespace

void parse_plan_lists(const PlanLists& lists, PlanOptions& plan) {
  plan.modes.clear();
  for (auto m : split(lists.modes, ',')) plan.modes.push_back(parse_mode(std::string(m)));
  plan.loops.clear();
  for (auto k : split(lists.loops, ',')) plan.loops.push_back(int_option(k, "--loops"));
  plan.alphas.clear();
  for (auto a : split(lists.alphas, ',')) {
    const auto alpha = parse_alpha(a);
    if (!alpha)
      throw Error(fmt::format("--alphas: '{}' is not a weight in [0, {}]", a, kMaxLayerAlpha));
    plan.alphas.push_back(*alpha);
  }
  if (!lists.i_range.empty()) plan.i_range = range_option(lists.i_range, "--i-range");
  if (!lists.j_range.empty()) plan.j_range = range_option(lists.j_range, "--j-range");
}

Mode parse_mode(const std::string& name) {
  if (name == "repeat") return Mode::Repeat;
  if (name == "skip") return Mode::Skip;
  if (name == "loop") return Mode::Loop;
  throw Error(fmt::format("--mode: unknown mode '{}' (known: repeat, skip, loop)", name));
}

LayerPath Config::path(int n_layer) const {
  switch (mode) {
    case Mode::Baseline:
      return LayerPath::identity(n_layer);
    case Mode::Repeat:
      return LayerPath::repeat(n_layer, i, j, 2, alpha);
    case Mode::Loop:
      return LayerPath::repeat(n_layer, i, j, k, alpha);
    case Mode::Skip:
      return LayerPath::skip(n_layer, i, j);
    case Mode::Multi: {
      LayerPath p;
      int next = 0;  // first layer not yet walked
      auto add = [&](int layer, float a) {
        p.layers.push_back(layer);
        p.alpha.push_back(a);
      };
      for (const Config& b : parts) {
        for (; next < b.i; ++next) add(next, 1.0f);
        for (int pass = 0; pass < b.k; ++pass)
          for (int l = b.i; l < b.j; ++l) add(l, pass == 0 ? 1.0f : b.alpha);
        next = b.j;
      }
      for (; next < n_layer; ++next) add(next, 1.0f);
      if (!p.damped()) p.alpha.clear();  // the undamped path compares equal to plain ones
      return p;
    }
  }
  return {};
}

std::optional<Config> compose(int n_layer, const std::vector<Config>& blocks) {
  std::vector<Config> flat;
  for (const Config& b : blocks)
    if (b.mode == Mode::Multi)
      flat.insert(flat.end(), b.parts.begin(), b.parts.end());
    else
      flat.push_back(b);
  if (flat.empty()) return std::nullopt;
  std::sort(flat.begin(), flat.end(), [](const Config& a, const Config& b) { return a.i < b.i; });
  int kept = n_layer, prev_end = 0;
  for (const Config& b : flat) {
    if (b.mode != Mode::Repeat && b.mode != Mode::Loop && b.mode != Mode::Skip) return std::nullopt;
    if (b.i < prev_end || b.j <= b.i || b.j > n_layer) return std::nullopt;
    prev_end = b.j;
    if (b.mode == Mode::Skip) kept -= b.j - b.i;
  }
  if (kept <= 0) return std::nullopt;
  if (flat.size() == 1) return flat[0];
  Config c;
  c.mode = Mode::Multi;
  c.i = flat.front().i;
  c.j = flat.back().j;
  c.k = 0;
  c.parts = std::move(flat);
  return c;
}

std::string Config::key() const {
  if (mode == Mode::Multi) {
    std::string s;
    for (const Config& b : parts) {
      if (!s.empty()) s += '+';  // not `"+" + key`: GCC 12 -Wrestrict false positive
      s += b.key();
    }
    return s;
  }
  const std::string damp = alpha != 1.0f ? fmt::format("@{}", format_alpha(alpha)) : "";
  switch (mode) {
    case Mode::Baseline:
      return "baseline";
    case Mode::Loop:
      return fmt::format("loop:{}:{}:{}{}", i, j, k, damp);
    case Mode::Repeat:
      return fmt::format("repeat:{}:{}{}", i, j, damp);
    default:
      return fmt::format("{}:{}:{}", mode_name(mode), i, j);
  }
}

Config Config::from_key(const std::string& key_in) {
  if (key_in == "baseline") return baseline();
  if (key_in.find('+') != std::string::npos) {
    Config c;
    c.mode = Mode::Multi;
    c.k = 0;
    size_t start = 0;
    for (size_t p; start <= key_in.size(); start = p + 1) {
      p = std::min(key_in.find('+', start), key_in.size());
      Config b = from_key(key_in.substr(start, p - start));
      if (b.mode == Mode::Baseline || b.mode == Mode::Multi ||
          (!c.parts.empty() && b.i < c.parts.back().j))
        throw Error(fmt::format("malformed scan config key '{}'", key_in));
      c.parts.push_back(b);
    }
    c.i = c.parts.front().i;
    c.j = c.parts.back().j;
    return c;
  }
  std::string key = key_in;
  float alpha = 1.0f;
  if (size_t at = key.find('@'); at != std::string::npos) {
    auto a = parse_alpha(std::string_view(key).substr(at + 1));
    if (!a) throw Error(fmt::format("malformed scan config key '{}'", key_in));
    alpha = *a;
    key.resize(at);
  }
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t p; (p = key.find(':', start)) != std::string::npos; start = p + 1)
    parts.push_back(key.substr(start, p - start));
  parts.push_back(key.substr(start));
  auto num = [&](const std::string& s) {
    int v = 0;
    if (!parse_int(s, v)) throw Error(fmt::format("malformed scan config key '{}'", key));
    return v;
  };
  Config c;
  c.mode = parse_mode(parts[0]);
  if (parts.size() != (c.mode == Mode::Loop ? 4u : 3u))
    throw Error(fmt::format("malformed scan config key '{}'", key));
  c.i = num(parts[1]);
  c.j = num(parts[2]);
  c.k = c.mode == Mode::Loop ? num(parts[3]) : (c.mode == Mode::Repeat ? 2 : 0);
  if (alpha != 1.0f && c.mode == Mode::Skip)
    throw Error(fmt::format("malformed scan config key '{}'", key_in));
  c.alpha = alpha;
  return c;
}

namespace {

void validate(int n_layer, const PlanOptions& o) {
  if (o.block_min < 1) throw Error(fmt::format("--block-min must be >= 1, got {}", o.block_min));
  if (o.block_max != 0 && o.block_max < o.block_min)
    throw Error(
        fmt::format("--block-max {} is smaller than --block-min {}", o.block_max, o.block_min));
  if (o.block_min > n_layer)
    throw Error(fmt::format("--block-min {} exceeds the model's {} layers", o.block_min, n_layer));
  auto check = [&](const std::optional<Range>& r, const char* name, int max_hi) {
    if (!r) return;
    if (r->lo < 0 || r->hi > max_hi || r->lo >= r->hi)
      throw Error(fmt::format("{} {}:{} is outside the model (allowed within 0:{}, lo < hi)", name,
                              r->lo, r->hi, max_hi));
  };
  check(o.i_range, "--i-range", n_layer);
  check(o.j_range, "--j-range", n_layer + 1);
  for (int k : o.loops)
    if (k < 2 || k > 64) throw Error(fmt::format("--loops: run count {} must be 2..64", k));
  if (o.alphas.empty()) throw Error("--alphas: give at least one weight");
  for (float a : o.alphas)
    if (!(a >= 0.0f && a <= kMaxLayerAlpha))
      throw Error(fmt::format("--alphas: weight {} must be in [0, {}]", a, kMaxLayerAlpha));
}

bool allowed(int n_layer, const PlanOptions& o, Mode mode, int i, int j) {
  if (i < 0 || j > n_layer || j <= i) return false;
  const int size = j - i;
  if (size < o.block_min || (o.block_max && size > o.block_max)) return false;
  if (o.i_range && !o.i_range->contains(i)) return false;
  if (o.j_range && !o.j_range->contains(j)) return false;
  if (mode == Mode::Skip && size == n_layer) return false;  // nothing would be left
  return true;
}

std::vector<Config> expand(int n_layer, const PlanOptions& o, Mode mode, int i, int j) {
  if (!allowed(n_layer, o, mode, i, j)) return {};
  std::vector<Config> out;
  switch (mode) {
    case Mode::Repeat:
      for (float a : o.alphas) out.push_back(Config{Mode::Repeat, i, j, 2, a});
      break;
    case Mode::Skip:
      out.push_back(Config{Mode::Skip, i, j, 0});
      break;
    case Mode::Loop:
      for (int k : o.loops)
        for (float a : o.alphas) out.push_back(Config{Mode::Loop, i, j, k, a});
      break;
    default:
      break;
  }
  return out;
}

template <typename Pred>
std::vector<Config> plan_where(int n_layer, const PlanOptions& o, Pred keep) {
  validate(n_layer, o);
  std::vector<Config> out;
  std::set<std::string> paths;  // each layer path once: loop:i:j:2 is repeat:i:j
  for (Mode mode : o.modes)
    for (int i = 0; i < n_layer; ++i)
      for (int j = i + 1; j <= n_layer; ++j)
        if (keep(i, j))
          for (const Config& c : expand(n_layer, o, mode, i, j))
            if (paths.insert(c.path(n_layer).canonical()).second) out.push_back(c);
  return out;
}

}  // namespace

std::vector<Config> plan_dense(int n_layer, const PlanOptions& opts) {
  return plan_where(n_layer, opts, [](int, int) { return true; });
}

std::vector<Config> plan_coarse(int n_layer, const PlanOptions& opts, int stride) {
  if (stride < 1) throw Error(fmt::format("coarse stride must be >= 1, got {}", stride));
  return plan_where(n_layer, opts, [&](int i, int j) {
    return i % stride == 0 && (j % stride == 0 || j == n_layer);
  });
}

std::vector<Config> plan_refine(int n_layer, const PlanOptions& opts,
                                const std::vector<Config>& seeds, int radius,
                                const std::vector<Config>& done) {
  validate(n_layer, opts);
  std::vector<Config> out;
  std::set<std::string> paths;  // done or planned, by layer path
  for (const Config& c : done) paths.insert(c.path(n_layer).canonical());
  for (const Config& s : seeds)
    for (int i = s.i - radius; i <= s.i + radius; ++i)
      for (int j = s.j - radius; j <= s.j + radius; ++j) {
        if (!allowed(n_layer, opts, s.mode, i, j)) continue;
        Config c{s.mode, i, j, s.k, s.alpha};
        if (paths.insert(c.path(n_layer).canonical()).second) out.push_back(c);
      }
  std::sort(out.begin(), out.end(), [](const Config& a, const Config& b) {
    return std::tie(a.mode, a.i, a.j, a.k, a.alpha) < std::tie(b.mode, b.i, b.j, b.k, b.alpha);
  });
  return out;
}

}  // namespace reprise::scan
