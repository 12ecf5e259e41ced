// The `reprise` Python module (pybind11): the C++ core itself, no second implementation.
// Errors surface as RuntimeError with the CLI's one-line message; compute releases the GIL.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "engine/generator.h"
#include "engine/layer_path.h"
#include "engine/session.h"
#include "model/model.h"
#include "model/tokenizer.h"
#include "util/error.h"

namespace py = pybind11;
using namespace reprise;

namespace {

struct PyModel {
  std::unique_ptr<Model> model;
  int threads = 0;

  const Tokenizer& tokenizer() const {
    if (!model->tokenizer()) throw Error(model->path() + ": the model has no vocabulary");
    return *model->tokenizer();
  }

  // As `reprise tokenize` / `reprise logits -p`: BOS when the vocabulary adds one (bos=None) or
  // as asked; special-token texts stay text unless `special`.
  std::vector<int32_t> tokenize(const std::string& text, std::optional<bool> bos,
                                bool special) const {
    EncodeOptions eo;
    eo.add_bos = bos.value_or(true);
    eo.parse_special = special;
    return tokenizer().encode(text, eo);
  }

  // Logits of the last position ([n_vocab]) or of every position ([T, n_vocab]), as `reprise
  // logits` computes them: one prefill on a fresh session.
  py::array_t<float> logits(const std::variant<std::string, std::vector<int32_t>>& input,
                            const std::optional<std::string>& path, bool all_positions) const {
    std::vector<int32_t> ids = std::holds_alternative<std::string>(input)
                                   ? tokenize(std::get<std::string>(input), std::nullopt, false)
                                   : std::get<std::vector<int32_t>>(input);
    if (ids.empty()) throw Error("logits: no tokens");
    const int n_layer = model->hparams().n_layer;
    LayerPath lp = parse_layer_path(path.value_or(""), n_layer);
    const size_t n_vocab = static_cast<size_t>(model->hparams().n_vocab);
    std::vector<float> out;
    {
      py::gil_scoped_release release;
      SessionOptions so;
      so.n_threads = threads;
      Session s(*model, std::move(lp), so);
      auto l = s.prefill(ids, all_positions);
      out.assign(l.begin(), l.end());
    }
    const auto cols = static_cast<py::ssize_t>(n_vocab);
    const auto rows = static_cast<py::ssize_t>(out.size() / n_vocab);
    py::array_t<float> arr = all_positions
                                 ? py::array_t<float>(std::vector<py::ssize_t>{rows, cols})
                                 : py::array_t<float>(std::vector<py::ssize_t>{cols});
    std::copy(out.begin(), out.end(), arr.mutable_data());
    return arr;
  }

  // The text `reprise run` prints after the prompt, with its sampler defaults (greedy unless a
  // temperature is given); stops at end-of-sequence or after max_tokens.
  std::string generate(const std::variant<std::string, std::vector<int32_t>>& prompt,
                       const std::optional<std::string>& path, int max_tokens, float temperature,
                       uint64_t seed, int top_k, float top_p) const {
    std::vector<int32_t> ids = std::holds_alternative<std::string>(prompt)
                                   ? tokenize(std::get<std::string>(prompt), std::nullopt, false)
                                   : std::get<std::vector<int32_t>>(prompt);
    LayerPath lp = parse_layer_path(path.value_or(""), model->hparams().n_layer);
    GenerateOptions go;
    go.max_tokens = max_tokens;
    go.sampler.temperature = temperature;
    go.sampler.seed = seed;
    go.sampler.top_k = top_k;
    go.sampler.top_p = top_p;
    go.invalid_utf8 = Utf8Stream::Invalid::Replace;  // a Python str must be valid UTF-8
    py::gil_scoped_release release;
    SessionOptions so;
    so.n_threads = threads;
    Session s(*model, std::move(lp), so);
    return reprise::generate(s, model->tokenizer(), ids, go,
                             [](const GenerationChunk&) { return true; })
        .text;
  }
};

}  // namespace

PYBIND11_MODULE(_reprise, m) {
  m.doc() = "reprise: run transformer LMs along arbitrary layer paths (C++ core)";
  py::register_exception<Error>(m, "Error", PyExc_RuntimeError);

  py::class_<LayerPath>(m, "Path", "A layer path: the physical layer run at each position.")
      .def_static(
          "parse",
          [](const std::string& spec, int n_layers) { return parse_layer_path(spec, n_layers); },
          py::arg("spec"), py::arg("n_layers"),
          "Parse path notation ('repeat:3:6', '0..3,1..4', '' = all layers) for a model of "
          "n_layers layers; raises RuntimeError with the CLI's message on a bad spec.")
      .def_property_readonly("canonical", &LayerPath::canonical,
                             "The explicit form, e.g. '0..3,1..4'.")
      .def_property_readonly(
          "layers", [](const LayerPath& p) { return p.layers; }, "Physical layer per position.")
      .def("__len__", [](const LayerPath& p) { return p.size(); })
      .def("__repr__", [](const LayerPath& p) { return "Path('" + p.canonical() + "')"; });

  py::class_<PyModel>(m, "Model", "A GGUF file or Hugging Face directory, loaded once.")
      .def(py::init([](const std::string& path, std::optional<int> threads) {
             auto pm = std::make_unique<PyModel>();
             {
               py::gil_scoped_release release;
               pm->model = Model::load(path);
             }
             pm->threads = threads.value_or(0);
             return pm;
           }),
           py::arg("path"), py::arg("threads") = py::none())
      .def_property_readonly("n_layers",
                             [](const PyModel& pm) { return pm.model->hparams().n_layer; })
      .def_property_readonly("n_vocab",
                             [](const PyModel& pm) { return pm.model->hparams().n_vocab; })
      .def("tokenize", &PyModel::tokenize, py::arg("text"), py::arg("bos") = py::none(),
           py::arg("special") = false,
           "Token ids of text; BOS when the vocabulary adds one (bos=None) or as asked.")
      .def(
          "detokenize",
          [](const PyModel& pm, const std::vector<int32_t>& ids) {
            return pm.tokenizer().decode(ids);
          },
          py::arg("ids"))
      .def("logits", &PyModel::logits, py::arg("tokens_or_text"), py::arg("path") = py::none(),
           py::arg("all_positions") = false,
           "float32 logits [n_vocab] of the last position, or [T, n_vocab] with all_positions; "
           "equal to `reprise logits` bit for bit.")
      .def("generate", &PyModel::generate, py::arg("prompt"), py::arg("path") = py::none(),
           py::arg("max_tokens") = 64, py::arg("temperature") = 0.0f, py::arg("seed") = 42,
           py::arg("top_k") = 40, py::arg("top_p") = 0.95f,
           "The continuation `reprise run` prints for the prompt (text or token ids); greedy "
           "by default.");
}
