// libFuzzer target: an OpenAI request body through parse_request() and, when it is accepted,
// resolve_request() against the bundled model (model names, layer paths, chat templates, prompt
// tokenization and the context limit). Byte 0 chooses the endpoint and the chat template.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>

#include "engine/layer_path.h"
#include "fuzz_common.h"
#include "model/model.h"
#include "serve/api_error.h"
#include "serve/openai_request.h"
#include "util/error.h"

namespace {

using reprise::serve::Endpoint;

struct Served {
  std::unique_ptr<reprise::Model> model;
  reprise::serve::ServedModel chatml, llama2;
};

const Served& served() {
  static const Served s = [] {
    Served out;
    out.model = reprise::Model::load(reprise::fuzz::source_dir() / "models/stories260K.gguf");
    const int n_layer = out.model->hparams().n_layer;
    for (auto* m : {&out.chatml, &out.llama2}) {
      m->model = out.model.get();
      m->id = "stories260K";
      m->default_path = reprise::LayerPath::identity(n_layer);
      m->named_paths = {{"rys", reprise::parse_layer_path("repeat:1:4", n_layer)}};
      m->n_ctx = 256;  // as `reprise serve --ctx 256`: small, so the length check is reachable
      m->max_path_len = 4 * n_layer;
    }
    out.chatml.chat_family = "chatml";
    out.llama2.chat_family = "llama2";
    return out;
  }();
  return s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Served& s = served();
  if (size == 0) return 0;
  const Endpoint endpoint = (data[0] & 1) ? Endpoint::ChatCompletions : Endpoint::Completions;
  const auto& model = (data[0] & 2) ? s.llama2 : s.chatml;
  const auto body = reprise::fuzz::as_text(data + 1, size - 1);
  try {
    const reprise::serve::ApiRequest req = reprise::serve::parse_request(endpoint, body);
    const reprise::serve::Job job = reprise::serve::resolve_request(req, model, 42);
    // What the slot will trust: a prompt that fits, ids in the vocabulary, a path in range.
    const int n_vocab = model.model->hparams().n_vocab;
    if (job.prompts.empty()) std::abort();
    for (const auto& prompt : job.prompts) {  // one per choice
      const auto& ids = prompt.tokens;
      if (ids.empty() || static_cast<int>(ids.size()) >= model.n_ctx) std::abort();
      for (int32_t id : ids)
        if (id < 0 || id >= n_vocab) {
          std::fprintf(stderr, "fuzz: accepted prompt token %d outside the vocabulary\n", id);
          std::abort();
        }
    }
    for (int layer : job.path.layers)
      if (layer < 0 || layer >= model.model->hparams().n_layer) std::abort();
    if (job.path.size() > model.max_path_len || job.gen.max_tokens < 0 ||
        job.gen.max_tokens > model.n_ctx)
      std::abort();
  } catch (const reprise::serve::ApiError&) {
    // A 4xx with the field named: the expected outcome for a bad body.
  } catch (const std::exception& e) {
    reprise::fuzz::untyped_exception(e);
  }
  return 0;
}
