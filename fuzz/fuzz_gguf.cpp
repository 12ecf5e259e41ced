// libFuzzer target: a hostile GGUF file through the reader, the vocabulary, the hyperparameters
// and the whole model loader (which builds weight views from the tensor table).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "format/gguf.h"
#include "fuzz_common.h"
#include "model/hparams.h"
#include "model/model.h"
#include "model/tokenizer.h"
#include "model/vocab.h"
#include "util/error.h"

namespace {

// Touches everything the reader hands out, so that a view that points outside the mapping shows
// up under ASan here rather than later in a kernel.
void check_view(const reprise::TensorView& view) {
  // Kernels index rows with row(r) for r < rows(), so the shape must fit inside the bytes.
  const unsigned __int128 need =
      static_cast<unsigned __int128>(static_cast<uint64_t>(view.rows())) * view.row_stride();
  if (need > view.data.size()) {
    std::fprintf(stderr, "fuzz: tensor %s: shape needs %llu bytes, view has %zu\n",
                 view.name.c_str(), static_cast<unsigned long long>(need), view.data.size());
    std::abort();
  }
}

void walk(const reprise::GgufFile& gguf) {
  size_t sink = 0;
  for (const auto& [key, value] : gguf.metadata())
    sink += key.size() + reprise::format_value(value).size();
  for (const auto& info : gguf.tensor_infos()) {
    const reprise::TensorView* view = gguf.tensor(info.name);
    if (!view) continue;
    check_view(*view);
    if (!view->data.empty())
      sink += static_cast<size_t>(view->data.front()) + static_cast<size_t>(view->data.back());
  }
  // Keep the reads from being optimised away.
  if (sink == 0xdeadbeef) std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static reprise::fuzz::InputFile file("input.gguf");
  const auto& path = file.write(data, size);
  try {
    const auto gguf = reprise::GgufFile::open(path);
    walk(*gguf);
    try {
      reprise::Vocab vocab = reprise::vocab_from_gguf(*gguf);
      if (vocab.model != reprise::Vocab::Model::None) {
        const auto tok = reprise::make_tokenizer(std::move(vocab));
        const auto ids =
            tok->encode("Hello world <s> 123 \xC3\xA9", {.add_bos = true, .parse_special = true});
        (void)tok->decode(ids);
      }
    } catch (const reprise::Error&) {
    }
    try {
      (void)reprise::hparams_from_gguf(*gguf);
    } catch (const reprise::Error&) {
    }
    (void)reprise::Model::load(path);
  } catch (const reprise::Error&) {
    // A one-line typed error is the expected outcome for a bad file.
  } catch (const std::exception& e) {
    reprise::fuzz::untyped_exception(e);
  }
  return 0;
}
