// libFuzzer target: layer path notation. The first byte picks the model's layer count, the rest
// is the spec. Besides not crashing, a parsed path must stay in range and survive a round trip
// through its canonical form.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "engine/layer_path.h"
#include "fuzz_common.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  // 1..256 layers: real models have up to ~128, and small counts hit the range checks more.
  const int n_layer = 1 + data[0];
  const auto spec = reprise::fuzz::as_text(data + 1, size - 1);
  reprise::LayerPath path;
  try {
    path = reprise::parse_layer_path(spec, n_layer);
  } catch (const reprise::Error&) {
    return 0;
  } catch (const std::exception& e) {
    reprise::fuzz::untyped_exception(e);
  }
  for (int layer : path.layers)
    if (layer < 0 || layer >= n_layer) {
      std::fprintf(stderr, "fuzz: layer %d out of range for %d layers\n", layer, n_layer);
      std::abort();
    }
  const std::string canonical = path.canonical();
  try {
    const reprise::LayerPath again = reprise::parse_layer_path(canonical, n_layer);
    if (!(again == path)) {
      std::fprintf(stderr, "fuzz: canonical form '%s' parses to a different path\n",
                   canonical.c_str());
      std::abort();
    }
  } catch (const reprise::Error& e) {
    std::fprintf(stderr, "fuzz: canonical form '%s' does not parse: %s\n", canonical.c_str(),
                 e.what());
    std::abort();
  }
  return 0;
}
