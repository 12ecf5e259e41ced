// A layer path: the physical layer indices a forward pass runs, in order.
//
// Notation (one parser for every command):
//   explicit list with inclusive ranges   "0..11,8..11,12..23"   "0,1,2,2,2,3"
//   repeat:I:J     layers 0..J-1 then I..N-1 (block I..J-1 runs twice; RYS config (I, J))
//   repeat:I:J:K   block I..J-1 runs K times in total
//   skip:I:J       drops layers I..J-1
//   "" / "all" / "identity" / "plain"   the plain path 0..N-1
//   "none"         no layers at all (what skip:0:N gives): embeddings straight to the output norm
//   damped positions: an entry or range followed by @A ("1..3@0.5", "2@0.25") adds only A times
//   its attention and FFN updates to the residual stream (x <- x + A*delta; A in [0, 2], 1 is
//   the plain block); "repeat:I:J@A" / "repeat:I:J:K@A" damp every pass after the first.
// I:J is half-open like mergekit's layer_range. The canonical form is the explicit list with
// maximal ascending runs of one weight collapsed to a..b (with @A when A != 1), or "none" for the
// empty path, so it always parses back to the same path.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace reprise {

// Largest residual weight a path position may carry.
inline constexpr float kMaxLayerAlpha = 2.0f;

struct LayerPath {
  std::vector<int> layers;  // physical layer per path position
  // Residual weight per path position; empty means 1 everywhere (the undamped path).
  std::vector<float> alpha{};  // (the {} keeps LayerPath{layers} free of -Wextra warnings)

  int size() const { return static_cast<int>(layers.size()); }
  float alpha_at(int pos) const { return alpha.empty() ? 1.0f : alpha[static_cast<size_t>(pos)]; }
  // Some position has a weight other than 1.
  bool damped() const;
  // Same layers and weights (an empty alpha equals all ones).
  bool operator==(const LayerPath& o) const;

  // "0..3,1..4" style.
  std::string canonical() const;

  static LayerPath identity(int n_layer);
  // Passes after the first carry weight `damp`.
  static LayerPath repeat(int n_layer, int i, int j, int times = 2, float damp = 1.0f);
  static LayerPath skip(int n_layer, int i, int j);
};

// Parses `spec` for a model with `n_layer` layers. An empty spec means the plain path.
// Throws Error naming the offending token and the model's layer count.
LayerPath parse_layer_path(std::string_view spec, int n_layer);

// Shortest text of a weight that parses back to the same float ("0.5", "0.3333333").
std::string format_alpha(float a);
// Parses a weight in [0, kMaxLayerAlpha]; nullopt for anything else (the caller names the
// argument).
std::optional<float> parse_alpha(std::string_view s);

}  // namespace reprise
