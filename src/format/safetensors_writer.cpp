#include "format/safetensors_writer.h"

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include "format/tensor_view.h"
#include "util/error.h"
#include "util/output_file.h"

namespace reprise {
namespace fs = std::filesystem;

std::string safetensors_dtype(TensorType type) {
  switch (type) {
    case TensorType::F32:
      return "F32";
    case TensorType::F16:
      return "F16";
    case TensorType::BF16:
      return "BF16";
    default:
      throw Error(
          fmt::format("safetensors has no {} type (use F32, F16 or BF16)", info(type).name));
  }
}

void SafetensorsWriter::set_metadata(const std::string& key, const std::string& value) {
  for (auto& [k, v] : metadata_)
    if (k == key) {
      v = value;
      return;
    }
  metadata_.emplace_back(key, value);
}

SafetensorsWriter::Entry& SafetensorsWriter::new_entry(const std::string& name, TensorType type,
                                                       std::vector<int64_t> shape) {
  auto bad = [&](const std::string& what) {
    return Error(fmt::format("safetensors tensor {}: {}", name, what));
  };
  if (name.empty() || name == "__metadata__") throw bad("reserved or empty name");
  for (const auto& e : tensors_)
    if (e.name == name) throw bad("added twice");
  const std::string dtype = safetensors_dtype(type);
  if (shape.empty()) throw bad("has no dimensions");
  uint64_t elements = 1;
  for (int64_t d : shape) {
    if (d <= 0)
      throw bad(fmt::format("shape {} has a non-positive dimension", shape_string(shape)));
    elements *= static_cast<uint64_t>(d);
  }
  Entry e;
  e.name = name;
  e.type = type;
  e.shape = std::move(shape);
  e.nbytes = elements * info(type).block_bytes;
  tensors_.push_back(std::move(e));
  return tensors_.back();
}

void SafetensorsWriter::add_tensor(const std::string& name, TensorType type,
                                   std::vector<int64_t> shape, std::span<const std::byte> data) {
  Entry& e = new_entry(name, type, std::move(shape));
  if (data.size() != e.nbytes) {
    const std::string msg =
        fmt::format("safetensors tensor {}: {} bytes given, shape {} of {} needs {}", name,
                    data.size(), shape_string(e.shape), info(type).name, e.nbytes);
    tensors_.pop_back();
    throw Error(msg);
  }
  e.data = data;
}

void SafetensorsWriter::add_tensor(const std::string& name, TensorType type,
                                   std::vector<int64_t> shape, std::vector<std::byte> data) {
  add_tensor(name, type, std::move(shape), std::span<const std::byte>(data));
  owned_.push_back(std::move(data));  // the heap block stays where the span points
}

void SafetensorsWriter::add_tensor(const std::string& name, TensorType type,
                                   std::vector<int64_t> shape, Fill fill) {
  if (!fill) throw Error(fmt::format("safetensors tensor {}: no data", name));
  new_entry(name, type, std::move(shape)).fill = std::move(fill);
}

uint64_t SafetensorsWriter::data_bytes() const {
  uint64_t n = 0;
  for (const auto& e : tensors_) n += e.nbytes;
  return n;
}

void SafetensorsWriter::write_file(const fs::path& path, size_t first, size_t last,
                                   bool overwrite) const {
  // Header in file order, so a reader listing it sees the tensors as laid out.
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  nlohmann::ordered_json meta = nlohmann::ordered_json::object();
  for (const auto& [k, v] : metadata_) meta[k] = v;
  if (!meta.empty()) header["__metadata__"] = std::move(meta);
  uint64_t offset = 0;
  for (size_t k = first; k < last; ++k) {
    const Entry& e = tensors_[k];
    header[e.name] = {{"dtype", safetensors_dtype(e.type)},
                      {"shape", e.shape},
                      {"data_offsets", {offset, offset + e.nbytes}}};
    offset += e.nbytes;
  }
  std::string text = header.dump();
  // Spaces are valid JSON trailing whitespace; they put the data on an 8-byte boundary.
  text.append((8 - text.size() % 8) % 8, ' ');

  OutputFile out(path, overwrite);
  const uint64_t n = text.size();
  unsigned char len[8];
  for (int b = 0; b < 8; ++b) len[b] = static_cast<unsigned char>(n >> (8 * b));
  out.write(len, 8);
  out.write(text.data(), text.size());
  std::vector<std::byte> scratch;
  for (size_t k = first; k < last; ++k) tensors_[k].write_to(out, scratch);
  out.commit();
}

void SafetensorsWriter::write(const fs::path& path, bool overwrite) const {
  write_file(path, 0, tensors_.size(), overwrite);
}

std::vector<std::string> SafetensorsWriter::write_sharded(const fs::path& dir,
                                                          uint64_t max_shard_bytes,
                                                          bool overwrite) const {
  if (max_shard_bytes == 0) throw Error("safetensors shard size limit must be positive");
  // Shard boundaries: [bounds[i], bounds[i+1]) of tensors_.
  std::vector<size_t> bounds = {0};
  uint64_t in_shard = 0;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    if (in_shard > 0 && in_shard + tensors_[k].nbytes > max_shard_bytes) {
      bounds.push_back(k);
      in_shard = 0;
    }
    in_shard += tensors_[k].nbytes;
  }
  bounds.push_back(tensors_.size());
  const size_t n_shards = bounds.size() - 1;

  std::vector<std::string> names;
  try {
    if (n_shards == 1) {
      write_file(dir / "model.safetensors", 0, tensors_.size(), overwrite);
      names.push_back("model.safetensors");
      return names;
    }
    nlohmann::ordered_json weight_map = nlohmann::ordered_json::object();
    for (size_t s = 0; s < n_shards; ++s) {
      const std::string name = fmt::format("model-{:05d}-of-{:05d}.safetensors", s + 1, n_shards);
      write_file(dir / name, bounds[s], bounds[s + 1], overwrite);
      names.push_back(name);
      for (size_t k = bounds[s]; k < bounds[s + 1]; ++k) weight_map[tensors_[k].name] = name;
    }
    nlohmann::ordered_json index = {{"metadata", {{"total_size", data_bytes()}}},
                                    {"weight_map", std::move(weight_map)}};
    const std::string text = index.dump(2) + "\n";
    OutputFile out(dir / "model.safetensors.index.json", overwrite);
    out.write(text.data(), text.size());
    out.commit();
    names.push_back("model.safetensors.index.json");
  } catch (...) {
    std::error_code ec;
    for (const auto& n : names) fs::remove(dir / n, ec);
    throw;
  }
  return names;
}

}  // namespace reprise
