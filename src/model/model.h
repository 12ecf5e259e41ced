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
  // Opens a .gguf file, a safetensors directory (config.json + model.safetensors[.index.json])
  // or a single .safetensors file inside such a directory. Throws Error/FormatError naming the
  // file and field on bad input.
  static std::unique_ptr<Model> load(const std::filesystem::path& path);

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

  // Bytes of the mapped model file(s).
  uint64_t mapped_bytes() const;

 private:
  Model() = default;
  void load_gguf(const std::filesystem::path& path);
  void load_safetensors(const std::filesystem::path& path);

  std::string path_;
  std::string name_;
  std::unique_ptr<GgufFile> gguf_;
  std::unique_ptr<SafetensorsModel> safetensors_;
  HParams hparams_;
  Weights weights_;
  std::unique_ptr<Tokenizer> tokenizer_;
};

}  // namespace reprise
