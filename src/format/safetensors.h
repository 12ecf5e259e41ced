// Hugging Face safetensors checkpoints: one file or a directory of shards, memory-mapped.
//
// A file is a u64 little-endian header length N, N bytes of JSON describing each tensor
// ({name: {dtype, shape, data_offsets: [begin, end]}}, plus an optional "__metadata__"), then the
// data; offsets count from the first byte after the header. Every length, offset and shape is
// checked against the mapped bytes before a view is made, so a truncated or hostile checkpoint ends
// in a one-line FormatError naming the file, never in an out-of-bounds read.
#pragma once

#include <nlohmann/json_fwd.hpp>

#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "format/mapped_file.h"
#include "format/tensor_view.h"

namespace reprise {

class SafetensorsModel {
 public:
  // `path` is a checkpoint directory (model.safetensors, or model.safetensors.index.json and the
  // shards its "weight_map" names) or a single .safetensors file. config.json beside the weights
  // is read too. Throws FormatError (one line, starting with the offending file) on bad input.
  static std::unique_ptr<SafetensorsModel> open(const std::filesystem::path& path);

  ~SafetensorsModel();
  SafetensorsModel(const SafetensorsModel&) = delete;
  SafetensorsModel& operator=(const SafetensorsModel&) = delete;

  // The directory holding the weights (the parent directory when opened as a single file).
  const std::filesystem::path& dir() const { return dir_; }
  // config.json of dir(), or an empty object when there is none.
  const nlohmann::json& config() const { return *config_; }
  // Path of config.json, for messages about its contents (it may not exist).
  std::string config_path() const { return (dir_ / "config.json").string(); }

  // Paths of the mapped shard files, in load order.
  std::vector<std::string> files() const;

  // View of an F32/F16/BF16 tensor by name; nullptr when no shard has it. Tensors of other dtypes
  // are not in tensors(); asking for one by name throws FormatError naming it and its dtype.
  const TensorView* tensor(std::string_view name) const;
  // Usable tensors: shard by shard, each in file order.
  const std::vector<TensorView>& tensors() const { return views_; }

 private:
  SafetensorsModel();
  void load_shard(const std::filesystem::path& file);

  struct Unsupported {
    std::string file;
    std::string dtype;
  };

  std::filesystem::path dir_;
  std::unique_ptr<nlohmann::json> config_;
  std::vector<MappedFile> shards_;  // the views below point into these mappings
  std::vector<TensorView> views_;
  std::unordered_map<std::string, size_t> index_;  // name -> views_ position
  std::unordered_map<std::string, size_t> owner_;  // name -> shards_ position, all dtypes
  std::unordered_map<std::string, Unsupported> unsupported_;  // dtype reprise cannot compute with
};

}  // namespace reprise
