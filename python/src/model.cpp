// reprise.Model and reprise.Path: tokenizing, logits, hidden states and generation along a
// layer path, each computed by the engine exactly as the CLI computes it.
#include <pybind11/numpy.h>
#include <pybind11/stl.h>

#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>

#include "bindings.h"
#include "engine/generator.h"
#include "kernels/ops.h"
#include "model/tokenizer.h"
#include "util/error.h"

namespace py = pybind11;

namespace reprise::pyapi {
namespace {

// Copies the residual stream after each path position into out[slot + 1] of a [P + 1, T, d]
// array; a prefill longer than the session's batch arrives in chunks, slot by slot per chunk.
class ResidualRecorder final : public ForwardObserver {
 public:
  ResidualRecorder(float* out, int positions, int64_t n_tokens, int64_t n_embd)
      : out_(out), n_tokens_(n_tokens), n_embd_(n_embd), written_(positions, 0) {}
  void block_out(int slot, int /*layer*/, const float* x, int64_t T, int64_t n_embd) override {
    float* dst = out_ + ((slot + 1) * n_tokens_ + written_[slot]) * n_embd_;
    std::copy(x, x + T * n_embd, dst);
    written_[slot] += T;
  }

 private:
  float* out_;
  int64_t n_tokens_, n_embd_;
  std::vector<int64_t> written_;
};

py::array_t<float> logits(const PyModel& pm, const TextOrTokens& input,
                          const std::optional<std::string>& path, bool all_positions) {
  const std::vector<int32_t> ids = pm.tokens(input);
  if (ids.empty()) throw Error("logits: no tokens");
  LayerPath lp = pm.layer_path(path);
  const auto n_vocab = static_cast<py::ssize_t>(pm.model->hparams().n_vocab);
  const auto rows = static_cast<py::ssize_t>(all_positions ? ids.size() : 1);
  py::array_t<float> arr = all_positions
                               ? py::array_t<float>(std::vector<py::ssize_t>{rows, n_vocab})
                               : py::array_t<float>(std::vector<py::ssize_t>{n_vocab});
  float* out = arr.mutable_data();
  {
    py::gil_scoped_release release;
    Session s(*pm.model, std::move(lp), pm.session_options());
    const auto l = s.prefill(ids, all_positions);
    std::copy(l.begin(), l.end(), out);
  }
  return arr;
}

py::array_t<float> hidden_states(const PyModel& pm, const TextOrTokens& input,
                                 const std::optional<std::string>& path) {
  const std::vector<int32_t> ids = pm.tokens(input);
  if (ids.empty()) throw Error("hidden_states: no tokens");
  LayerPath lp = pm.layer_path(path);
  const int positions = lp.size();
  const auto T = static_cast<int64_t>(ids.size());
  const int64_t d = pm.model->hparams().n_embd;
  py::array_t<float> arr(std::vector<py::ssize_t>{positions + 1, T, d});
  float* out = arr.mutable_data();
  {
    py::gil_scoped_release release;
    ResidualRecorder rec(out, positions, T, d);
    Session s(*pm.model, std::move(lp), pm.session_options());
    s.set_observer(&rec);
    s.prefill(ids);  // checks the token ids before the embeddings below read them
    for (int64_t t = 0; t < T; ++t)
      kernels::embedding_row(pm.model->weights().token_embd, ids[t], out + t * d);
  }
  return arr;
}

GenerateOptions generate_options(int max_tokens, float temperature, uint64_t seed, int top_k,
                                 float top_p, const std::vector<std::string>& stop) {
  GenerateOptions go;
  go.max_tokens = max_tokens;
  go.sampler.temperature = temperature;
  go.sampler.seed = seed;
  go.sampler.top_k = top_k;
  go.sampler.top_p = top_p;
  go.stop = stop;
  go.invalid_utf8 = Utf8Stream::Invalid::Replace;  // a Python str must be valid UTF-8
  return go;
}

// generate(stream=True): the generation loop runs on its own thread (the engine's generate(),
// unchanged) and hands each released piece of text to the iterator, which waits for it with the
// GIL released. Dropping the iterator cancels the generation and joins the thread.
class TextStream {
 public:
  TextStream(std::shared_ptr<const Model> model, LayerPath path, SessionOptions so,
             std::vector<int32_t> prompt, GenerateOptions go)
      : state_(std::make_shared<State>()) {
    thread_ = std::thread([st = state_, model = std::move(model), path = std::move(path), so,
                           prompt = std::move(prompt), go = std::move(go)]() mutable {
      try {
        Session s(*model, std::move(path), so);
        reprise::generate(s, model->tokenizer(), prompt, go, [&](const GenerationChunk& c) {
          std::lock_guard lock(st->mu);
          if (st->cancelled) return false;
          if (!c.text.empty()) st->pieces.emplace_back(c.text);
          st->cv.notify_one();
          return true;
        });
      } catch (...) {
        std::lock_guard lock(st->mu);
        st->error = std::current_exception();
      }
      std::lock_guard lock(st->mu);
      st->done = true;
      st->cv.notify_one();
    });
  }
  TextStream(const TextStream&) = delete;
  TextStream& operator=(const TextStream&) = delete;
  ~TextStream() {
    {
      std::lock_guard lock(state_->mu);
      state_->cancelled = true;
    }
    if (thread_.joinable()) thread_.join();
  }

  std::string next() {
    std::optional<std::string> piece;
    std::exception_ptr error;
    {
      py::gil_scoped_release release;
      std::unique_lock lock(state_->mu);
      state_->cv.wait(lock, [&] { return !state_->pieces.empty() || state_->done; });
      if (!state_->pieces.empty()) {
        piece = std::move(state_->pieces.front());
        state_->pieces.pop_front();
      } else {
        std::swap(error, state_->error);
      }
    }
    if (piece) return *piece;
    if (error) std::rethrow_exception(error);
    throw py::stop_iteration();
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::string> pieces;
    bool done = false, cancelled = false;
    std::exception_ptr error;
  };
  std::shared_ptr<State> state_;
  std::thread thread_;
};

py::object generate(const PyModel& pm, const TextOrTokens& prompt,
                    const std::optional<std::string>& path, int max_tokens, float temperature,
                    uint64_t seed, int top_k, float top_p, const std::vector<std::string>& stop,
                    bool stream) {
  std::vector<int32_t> ids = pm.tokens(prompt);
  LayerPath lp = pm.layer_path(path);
  GenerateOptions go = generate_options(max_tokens, temperature, seed, top_k, top_p, stop);
  if (stream)
    return py::cast(std::make_unique<TextStream>(pm.model, std::move(lp), pm.session_options(),
                                                 std::move(ids), std::move(go)));
  std::string text;
  {
    py::gil_scoped_release release;
    Session s(*pm.model, std::move(lp), pm.session_options());
    text = reprise::generate(s, pm.model->tokenizer(), ids, go, [](const GenerationChunk&) {
             return true;
           }).text;
  }
  return py::str(text);
}

py::dict info(const PyModel& pm) {
  const Model& m = *pm.model;
  const HParams& hp = m.hparams();
  py::dict d;
  d["path"] = m.path();
  d["name"] = m.name();
  d["architecture"] = hp.arch_name;
  d["n_layers"] = hp.n_layer;
  d["n_embd"] = hp.n_embd;
  d["n_head"] = hp.n_head;
  d["n_head_kv"] = hp.n_head_kv;
  d["head_dim"] = hp.head_dim;
  d["n_ff"] = hp.n_ff;
  d["n_vocab"] = hp.n_vocab;
  d["n_ctx_train"] = hp.n_ctx_train;
  d["rope_theta"] = hp.rope_theta;
  d["rope_style"] = hp.rope_style == RopeStyle::Interleaved ? "interleaved" : "neox";
  d["rms_eps"] = hp.rms_eps;
  d["tied_output"] =
      hp.tied_output || m.weights().output.data.data() == m.weights().token_embd.data.data();
  d["mapped_bytes"] = m.mapped_bytes();
  if (const Tokenizer* tok = m.tokenizer()) {
    const Vocab& v = tok->vocab();
    d["tokenizer"] = v.model == Vocab::Model::Spm ? "spm" : "bpe";
    d["pre_tokenizer"] = v.pre;
    d["bos_token_id"] = v.bos;
    d["eos_token_id"] = v.eos;
    d["add_bos"] = v.add_bos;
    d["chat_template"] =
        v.chat_template.empty() ? py::object(py::none()) : py::str(v.chat_template);
  } else {
    d["tokenizer"] = py::none();
  }
  return d;
}

}  // namespace

const Tokenizer& PyModel::tokenizer() const {
  if (!model->tokenizer()) throw Error(model->path() + ": the model has no vocabulary");
  return *model->tokenizer();
}

std::vector<int32_t> PyModel::tokenize(const std::string& text, std::optional<bool> bos,
                                       bool special) const {
  EncodeOptions eo;
  eo.add_bos = bos.value_or(true);  // true: as the vocabulary asks (see EncodeOptions)
  eo.parse_special = special;
  return tokenizer().encode(text, eo);
}

std::vector<int32_t> PyModel::tokens(const TextOrTokens& input) const {
  if (const auto* text = std::get_if<std::string>(&input)) return tokenize(*text, {}, false);
  return std::get<std::vector<int32_t>>(input);
}

LayerPath PyModel::layer_path(const std::optional<std::string>& spec) const {
  return parse_layer_path(spec.value_or(""), model->hparams().n_layer);
}

SessionOptions PyModel::session_options() const {
  SessionOptions so;
  so.n_threads = threads;
  return so;
}

void bind_model(py::module_& m) {
  py::class_<LayerPath>(m, "Path", "A layer path: the physical layer run at each position.")
      .def_static(
          "parse",
          [](const std::string& spec, int n_layers) { return parse_layer_path(spec, n_layers); },
          py::arg("spec"), py::arg("n_layers"),
          "Parse path notation ('repeat:3:6', '0..3,1..4', '' = all layers) for a model of "
          "n_layers layers; raises reprise.Error with the CLI's message on a bad spec.")
      .def_property_readonly("canonical", &LayerPath::canonical,
                             "The explicit form, e.g. '0..3,1..4'; parses back to the same path.")
      .def_property_readonly(
          "layers", [](const LayerPath& p) { return p.layers; }, "Physical layer per position.")
      .def_property_readonly(
          "alphas",
          [](const LayerPath& p) {
            std::vector<float> a(static_cast<size_t>(p.size()));
            for (int i = 0; i < p.size(); ++i) a[static_cast<size_t>(i)] = p.alpha_at(i);
            return a;
          },
          "Residual weight per position (1 = a plain pass, < 1 = a damped repeat).")
      .def("__len__", [](const LayerPath& p) { return p.size(); })
      .def("__repr__", [](const LayerPath& p) { return "Path('" + p.canonical() + "')"; });

  py::class_<TextStream>(m, "TextStream",
                         "Iterator over the text pieces of Model.generate(..., stream=True).")
      .def("__iter__", [](py::object self) { return self; })
      .def("__next__", &TextStream::next);

  py::class_<PyModel>(m, "Model", "A GGUF file or Hugging Face directory, loaded once.")
      .def(py::init([](const std::string& path, std::optional<int> threads) {
             if (threads && *threads < 0) throw Error("threads must be >= 0 (0: all cores)");
             auto pm = std::make_unique<PyModel>();
             {
               py::gil_scoped_release release;
               pm->model = Model::load(path);
             }
             pm->threads = threads.value_or(0);
             return pm;
           }),
           py::arg("path"), py::arg("threads") = py::none(),
           "Load a GGUF file or Hugging Face directory (memory-mapped); threads=None: all "
           "cores. Raises reprise.Error with the CLI's message on a bad file.")
      .def_property_readonly(
          "n_layers", [](const PyModel& pm) { return pm.model->hparams().n_layer; },
          "Physical layers (blocks) in the file.")
      .def_property_readonly("n_vocab",
                             [](const PyModel& pm) { return pm.model->hparams().n_vocab; })
      .def_property_readonly(
          "n_embd", [](const PyModel& pm) { return pm.model->hparams().n_embd; },
          "Width of the residual stream.")
      .def_property_readonly("path", [](const PyModel& pm) { return pm.model->path(); })
      .def_property_readonly("info", &info,
                             "What `reprise info` shows: architecture, hyperparameters, "
                             "tokenizer (a new dict each time).")
      .def("tokenize", &PyModel::tokenize, py::arg("text"), py::arg("bos") = py::none(),
           py::arg("special") = false,
           "Token ids of text, as `reprise tokenize`; BOS when the vocabulary adds one "
           "(bos=None) or as asked.")
      .def(
          "detokenize",
          [](const PyModel& pm, const std::vector<int32_t>& ids) {
            return py::str(pm.tokenizer().decode(ids));
          },
          py::arg("ids"), "The text of token ids (special tokens as their text).")
      .def("logits", &logits, py::arg("tokens_or_text"), py::arg("path") = py::none(),
           py::arg("all_positions") = false,
           "float32 logits [n_vocab] of the last position, or [T, n_vocab] with "
           "all_positions: one prefill on a fresh session, equal to `reprise logits` bit for bit.")
      .def("hidden_states", &hidden_states, py::arg("tokens_or_text"), py::arg("path") = py::none(),
           "float32 residual stream [P + 1, T, n_embd] of one prefill along the path (P "
           "positions): [0] the token embeddings, [p + 1] the stream after path position p "
           "(physical layer path.layers[p]); the last entry is before the final norm.")
      .def("generate", &generate, py::arg("prompt"), py::arg("path") = py::none(),
           py::arg("max_tokens") = 64, py::arg("temperature") = 0.0f, py::arg("seed") = 42,
           py::arg("top_k") = 40, py::arg("top_p") = 0.95f,
           py::arg("stop") = std::vector<std::string>{}, py::arg("stream") = false,
           "The continuation `reprise run` prints for the prompt (text or token ids), greedy "
           "by default; stream=True returns an iterator over its pieces of text instead.");
}

}  // namespace reprise::pyapi
