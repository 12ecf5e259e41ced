// mergekit passthrough recipes: a layer path written as `slices` of half-open `layer_range`s, and
// such recipes read back (with yaml-cpp) into a path.
//
// A path becomes one slice per maximal run of consecutive ascending layers, so
// 0 1 2 3 1 2 3 4 -> [0, 4) [1, 5), and 0 1 2 2 2 3 4 -> [0, 3) [2, 3) [2, 5). Reading the slices
// back and concatenating their ranges gives the same path exactly.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "engine/layer_path.h"

namespace reprise::exporter {

// One slice: layers [begin, end) of `model`.
struct MergekitSlice {
  std::string model;
  int begin = 0;
  int end = 0;
};

struct MergekitRecipe {
  std::string merge_method;  // "passthrough" when written by reprise
  std::string dtype;         // empty when the recipe names none
  std::vector<MergekitSlice> slices;
};

// Maximal consecutive ascending runs of the path, as half-open ranges.
std::vector<MergekitSlice> path_slices(const LayerPath& path, const std::string& model);

struct MergekitWriteOptions {
  std::string dtype;    // e.g. "float32", "bfloat16"; omitted when empty
  std::string comment;  // written as leading "# " lines (may contain newlines)
};

// The passthrough recipe for `path` over `model` (a path or hub name, written as given).
// Throws Error for an empty path.
std::string mergekit_yaml(const LayerPath& path, const std::string& model,
                          const MergekitWriteOptions& opts = {});

// Parses a recipe (any YAML 1.2 that yaml-cpp reads; one document). Throws Error
// "SOURCE:LINE: what" for malformed YAML or a recipe that is not a single-source passthrough over
// layer ranges.
MergekitRecipe parse_mergekit_yaml(std::string_view text, const std::string& source);

// The path the recipe's slices describe. Every slice must name the same model; with n_layer > 0
// each range must also fit the model. Throws Error naming the source and the slice.
LayerPath recipe_path(const MergekitRecipe& recipe, const std::string& source, int n_layer = 0);

}  // namespace reprise::exporter
