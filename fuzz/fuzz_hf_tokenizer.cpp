// libFuzzer target: a Hugging Face tokenizer.json (the `tokenizers` library format) through
// vocab_from_hf_json() and, when accepted, a tokenizer built from it encoding a fixed prompt.
// The input is split at the first NUL byte: tokenizer.json before it, tokenizer_config.json after.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "fuzz_common.h"
#include "model/hf_tokenizer.h"
#include "model/tokenizer.h"
#include "util/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const auto input = reprise::fuzz::as_text(data, size);
  const size_t nul = input.find('\0');
  const std::string_view tokenizer_json = input.substr(0, nul);
  const std::string_view config_json =
      nul == std::string_view::npos ? std::string_view{} : input.substr(nul + 1);
  try {
    reprise::Vocab vocab =
        reprise::vocab_from_hf_json(tokenizer_json, config_json, {}, "tokenizer.json");
    const auto tok = reprise::make_tokenizer(std::move(vocab));
    for (const bool special : {false, true}) {
      const auto ids = tok->encode("Hello world! <s>\n\n  caf\xC3\xA9 12345 <|im_end|>",
                                   {.add_bos = true, .parse_special = special});
      (void)tok->decode(ids);
    }
  } catch (const reprise::Error&) {
    // The expected outcome for a bad or unsupported tokenizer.json.
  } catch (const std::exception& e) {
    reprise::fuzz::untyped_exception(e);
  }
  return 0;
}
