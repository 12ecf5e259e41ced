// mergekit recipes: path -> YAML -> path gives the path back (repeats, skips, loops, reversals),
// hand-written recipes in other YAML styles read the same, and recipes outside the supported
// subset fail with the file and line.
#include <gtest/gtest.h>

#include <random>

#include "export/mergekit.h"
#include "util/error.h"

namespace reprise::exporter {
namespace {

LayerPath P(std::vector<int> v) {
  return LayerPath{std::move(v)};
}

LayerPath round_trip(const LayerPath& p, const std::string& model = "org/model") {
  const std::string yaml = mergekit_yaml(p, model, {"bfloat16", "a comment\nover two lines"});
  const MergekitRecipe r = parse_mergekit_yaml(yaml, "r.yaml");
  EXPECT_EQ(r.merge_method, "passthrough");
  EXPECT_EQ(r.dtype, "bfloat16");
  for (const auto& s : r.slices) EXPECT_EQ(s.model, model);
  return recipe_path(r, "r.yaml");
}

TEST(Mergekit, SlicesAreMaximalAscendingRuns) {
  auto ranges = [](const LayerPath& p) {
    std::vector<std::pair<int, int>> out;
    for (const auto& s : path_slices(p, "m")) out.emplace_back(s.begin, s.end);
    return out;
  };
  using R = std::vector<std::pair<int, int>>;
  EXPECT_EQ(ranges(LayerPath::identity(5)), (R{{0, 5}}));
  EXPECT_EQ(ranges(LayerPath::repeat(5, 1, 4)), (R{{0, 4}, {1, 5}}));
  EXPECT_EQ(ranges(LayerPath::repeat(5, 2, 3, 3)), (R{{0, 3}, {2, 3}, {2, 5}}));
  EXPECT_EQ(ranges(LayerPath::skip(5, 2, 3)), (R{{0, 2}, {3, 5}}));
  EXPECT_EQ(ranges(P({3, 2, 1, 0})), (R{{3, 4}, {2, 3}, {1, 2}, {0, 1}}));
  EXPECT_EQ(ranges(P({4})), (R{{4, 5}}));
}

TEST(Mergekit, WritesTheExpectedRecipe) {
  EXPECT_EQ(mergekit_yaml(LayerPath::repeat(5, 1, 4), "/models/stories 260K", {"float32", "hi"}),
            "# hi\n"
            "slices:\n"
            "  - sources:\n"
            "      - model: \"/models/stories 260K\"\n"
            "        layer_range: [0, 4]\n"
            "  - sources:\n"
            "      - model: \"/models/stories 260K\"\n"
            "        layer_range: [1, 5]\n"
            "merge_method: passthrough\n"
            "dtype: float32\n");
  EXPECT_THROW(mergekit_yaml(P({}), "m"), Error);
}

TEST(Mergekit, PathsRoundTrip) {
  for (const LayerPath& p :
       {LayerPath::identity(5), LayerPath::repeat(5, 1, 4), LayerPath::repeat(32, 8, 12, 4),
        LayerPath::skip(5, 2, 3), LayerPath::skip(5, 0, 4), P({0, 0, 0}), P({4, 3, 2, 1, 0}),
        P({0, 2, 4, 1, 3}), P({1, 2, 3, 1, 2, 3, 1, 2, 3})})
    EXPECT_EQ(round_trip(p), p) << p.canonical();
  // Models whose names need quoting survive too.
  for (const std::string model : {"a: b", "x # y", "it's", "quote\"d", "123", "true", "-lead"})
    EXPECT_EQ(round_trip(LayerPath::repeat(4, 1, 3), model), LayerPath::repeat(4, 1, 3)) << model;
  std::mt19937 rng(7);
  for (int k = 0; k < 200; ++k) {
    LayerPath p;
    const int n = 1 + static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) p.layers.push_back(static_cast<int>(rng() % 12));
    ASSERT_EQ(round_trip(p), p) << p.canonical();
  }
}

TEST(Mergekit, ReadsOtherYamlStyles) {
  const char* block_style = R"(# RYS-style recipe
merge_method: passthrough   # stack layers
slices:
- sources:
  - model: 'org/Model-7B'
    layer_range:
      - 0
      - 4
- sources:
    - {model: "org/Model-7B", layer_range: [1, 5]}
dtype: bfloat16
tokenizer_source: base
)";
  const auto r = parse_mergekit_yaml(block_style, "b.yaml");
  EXPECT_EQ(recipe_path(r, "b.yaml", 5), LayerPath::repeat(5, 1, 4));
  EXPECT_EQ(r.slices[0].model, "org/Model-7B");

  const char* flow_style =
      "---\nslices: [{sources: [{model: m, layer_range: [0, 2]}]}, "
      "{sources: [{layer_range: [3,5], model: m}]}]\nmerge_method: passthrough\n";
  EXPECT_EQ(recipe_path(parse_mergekit_yaml(flow_style, "f.yaml"), "f.yaml"),
            LayerPath::skip(5, 2, 3));
}

std::string parse_error(const std::string& yaml, int n_layer = 0) {
  try {
    recipe_path(parse_mergekit_yaml(yaml, "bad.yaml"), "bad.yaml", n_layer);
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()).find('\n'), std::string::npos);
    return e.what();
  }
  return "";
}

const std::string kSlice = "slices:\n  - sources:\n      - model: m\n        layer_range: [0, 2]\n";

TEST(Mergekit, BadRecipesNameFileAndLine) {
  EXPECT_EQ(parse_error(""), "bad.yaml: empty recipe");
  EXPECT_EQ(parse_error(kSlice), "bad.yaml: missing merge_method");
  EXPECT_EQ(parse_error(kSlice + "merge_method: slerp\n"),
            "bad.yaml:5: merge_method is slerp, expected passthrough (only layer stacking "
            "describes a layer path)");
  EXPECT_EQ(parse_error("merge_method: passthrough\n"), "bad.yaml: missing slices");
  EXPECT_EQ(parse_error(kSlice + "merge_method: passthrough\nfoo: 1\n"),
            "bad.yaml:6: unknown key 'foo'");
  EXPECT_EQ(parse_error("merge_method: passthrough\nslices:\n  - sources:\n      - model: m\n"
                        "        layer_range: [2, 2]\n"),
            "bad.yaml:5: slice 1: layer_range [2, 2] is empty (it is half-open: [begin, end))");
  EXPECT_EQ(parse_error("merge_method: passthrough\nslices:\n  - sources:\n      - model: m\n"
                        "        layer_range: [0, x]\n"),
            "bad.yaml:5: slice 1: layer_range must be a list of two layer numbers");
  EXPECT_EQ(parse_error("merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n"
                        "        layer_range: [0, 1]\n      - model: b\n        layer_range: [0, "
                        "1]\n"),
            "bad.yaml:3: slice 1: passthrough needs exactly one source per slice");
  EXPECT_EQ(parse_error("merge_method: passthrough\nslices:\n  - sources:\n      - model: a\n"
                        "        layer_range: [0, 1]\n        parameters: {scale: 0.5}\n"),
            "bad.yaml:6: slice 1: unsupported source key 'parameters' (a layer path copies "
            "layers unchanged)");
  EXPECT_EQ(parse_error(kSlice + "  - sources:\n      - model: other\n        layer_range: [0, "
                                 "1]\nmerge_method: passthrough\n"),
            "bad.yaml: slice 2 takes layers from other, slice 1 from m; a layer path runs a "
            "single model");
  EXPECT_EQ(parse_error(kSlice + "merge_method: passthrough\n", 1),
            "bad.yaml: slice 1 layer_range [0, 2] goes past the model's 1 layers (0..0)");
  EXPECT_EQ(parse_error("merge_method: passthrough\nmerge_method: passthrough\n"),
            "bad.yaml:2: duplicate key 'merge_method'");
  EXPECT_EQ(parse_error("slices:\n\t- x\n"),
            "bad.yaml:2: tab in indentation (YAML indents with spaces)");
  EXPECT_EQ(parse_error("merge_method: &a passthrough\n"),
            "bad.yaml:1: anchors, aliases and tags are not supported");
  EXPECT_EQ(parse_error("slices: [\n"),
            "bad.yaml:1: unclosed '[' (flow collections must fit on one line)");
  EXPECT_EQ(parse_error("merge_method: 'open\n"), "bad.yaml:1: unterminated quoted string");
  EXPECT_EQ(parse_error("a: 1\n   b: 2\n"), "bad.yaml:2: unexpected indentation");
}

}  // namespace
}  // namespace reprise::exporter
