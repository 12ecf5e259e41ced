// A layer path: the physical layer indices a forward pass runs, in order.
//
// Notation (one parser for every command):
//   explicit list with inclusive ranges   "0..11,8..11,12..23"   "0,1,2,2,2,3"
//   repeat:I:J     layers 0..J-1 then I..N-1 (block I..J-1 runs twice; RYS config (I, J))
//   repeat:I:J:K   block I..J-1 runs K times in total
//   skip:I:J       drops layers I..J-1
//   "" / "all" / "identity" / "plain"   the plain path 0..N-1
//   "none"         no layers at all (what skip:0:N gives): embeddings straight to the output norm
// I:J is half-open like mergekit's layer_range. The canonical form is the explicit list with
// maximal ascending runs collapsed to a..b, or "none" for the empty path, so it always parses back
// to the same path.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace reprise {

struct LayerPath {
  std::vector<int> layers;  // physical layer per path position

  int size() const { return static_cast<int>(layers.size()); }
  bool operator==(const LayerPath&) const = default;

  // "0..3,1..4" style.
  std::string canonical() const;

  static LayerPath identity(int n_layer);
  static LayerPath repeat(int n_layer, int i, int j, int times = 2);
  static LayerPath skip(int n_layer, int i, int j);
};

// Parses `spec` for a model with `n_layer` layers. An empty spec means the plain path.
// Throws Error naming the offending token and the model's layer count.
LayerPath parse_layer_path(std::string_view spec, int n_layer);

}  // namespace reprise
