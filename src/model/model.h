// A loaded model: hyperparameters, weights (views into mapped files), tokenizer.
#pragma once

#include <filesystem>
#include <memory>
#include <string>

#include "model/hparams.h"
#include "model/tokenizer.h"
#include "model/weights.h"

namespace reprise {

class GgufFile;
class SafetensorsModel;

class Model {
 public:
  // What the caller will use. Tokenizer also accepts a vocabulary-only GGUF (no tensors, like
  // llama.cpp's ggml-vocab-*.gguf test files): the Model then has a tokenizer and metadata, no
  // weights, hparams with only arch_name and n_vocab, and vocab_only() is true.
  enum class Need { Weights, Tokenizer };

  // Opens a .gguf file, a safetensors directory (config.json + model.safetensors[.index.json])
  // or a single .safetensors file inside such a directory. Throws Error/FormatError naming the
  // file and field on bad input (with Need::Weights, a GGUF without tensors is bad input).
  static std::unique_ptr<Model> load(const std::filesystem::path& path, Need need = Need::Weights);

  ~Model();
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  const HParams& hparams() const { return hparams_; }
  const Weights& weights() const { return weights_; }
  // nullptr when the file carries no vocabulary (the model then runs on token ids only).
  const Tokenizer* tokenizer() const { return tokenizer_.get(); }
  const std::string& path() const { return path_; }
  const std::string& name() const { return name_; }
  // The GGUF file when loaded from one (for metadata listing and export), else nullptr.
  const GgufFile* gguf() const { return gguf_.get(); }
  const SafetensorsModel* safetensors() const { return safetensors_.get(); }
  // A GGUF with a vocabulary and no tensors, loaded with Need::Tokenizer.
  bool vocab_only() const { return vocab_only_; }

  // Bytes of the mapped model file(s).
  uint64_t mapped_bytes() const;

 private:
  Model() = default;
  void load_gguf(const std::filesystem::path& path, Need need);
  void load_safetensors(const std::filesystem::path& path);

  std::string path_;
  std::string name_;
  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<SafetensorsModel> safetensors_;
  HParams hparams_;
  Weights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
  bool vocab_only_ = false;
};

}  // namespace reprise
