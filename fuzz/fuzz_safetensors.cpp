// libFuzzer target: a hostile single-file safetensors checkpoint (header length, JSON header,
// dtypes, shapes and data offsets) through SafetensorsModel::open.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "format/safetensors.h"
#include "fuzz_common.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static reprise::fuzz::InputFile file("model.safetensors");
  const auto& path = file.write(data, size);
  try {
    const auto model = reprise::SafetensorsModel::open(path);
    size_t sink = 0;
    for (const auto& view : model->tensors()) {
      // Every usable view must hold the bytes its shape promises (kernels trust this).
      const unsigned __int128 need =
          static_cast<unsigned __int128>(static_cast<uint64_t>(view.rows())) * view.row_stride();
      if (need > view.data.size()) {
        std::fprintf(stderr, "fuzz: tensor %s: shape needs more bytes than its view has (%zu)\n",
                     view.name.c_str(), view.data.size());
        std::abort();
      }
      if (!view.data.empty())
        sink += static_cast<size_t>(view.data.front()) + static_cast<size_t>(view.data.back());
      if (model->tensor(view.name) == nullptr) std::abort();  // listed but not findable
    }
    if (sink == 0xdeadbeef) std::abort();
  } catch (const reprise::Error&) {
    // The expected outcome for a bad file.
  } catch (const std::exception& e) {
    reprise::fuzz::untyped_exception(e);
  }
  return 0;
}
