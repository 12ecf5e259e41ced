#include "format/gguf_writer.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "util/error.h"

namespace reprise {
namespace fs = std::filesystem;

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" as a little-endian u32
constexpr uint32_t kVersion = 3;
constexpr size_t kMaxDims = 4;
// ggml keeps tensor names in a 64-byte buffer including the terminator; longer names would be
// cut off (or refused) by every ggml-based reader.
constexpr size_t kMaxNameBytes = 63;

}  // namespace

// ---------------------------------------------------------------------------------------------
// GGUF encoding

namespace {

class Encoder {
 public:
  explicit Encoder(OutputFile& out) : out_(out) {}

  template <typename T>
  void put(T v) {
    out_.write(&v, sizeof v);
  }
  void put_string(const std::string& s) {
    put<uint64_t>(s.size());
    out_.write(s.data(), s.size());
  }

  // One element of `type` from the integer or float slot of a value.
  void put_scalar(GgufType type, int64_t i, double f, const std::string& key) {
    switch (type) {
      case GgufType::U8:
        put<uint8_t>(static_cast<uint8_t>(i));
        break;
      case GgufType::I8:
        put<int8_t>(static_cast<int8_t>(i));
        break;
      case GgufType::U16:
        put<uint16_t>(static_cast<uint16_t>(i));
        break;
      case GgufType::I16:
        put<int16_t>(static_cast<int16_t>(i));
        break;
      case GgufType::U32:
        put<uint32_t>(static_cast<uint32_t>(i));
        break;
      case GgufType::I32:
        put<int32_t>(static_cast<int32_t>(i));
        break;
      case GgufType::U64:
        put<uint64_t>(static_cast<uint64_t>(i));
        break;
      case GgufType::I64:
        put<int64_t>(i);
        break;
      case GgufType::F32:
        put<float>(static_cast<float>(f));
        break;
      case GgufType::F64:
        put<double>(f);
        break;
      case GgufType::BOOL:
        put<uint8_t>(i != 0 ? 1 : 0);
        break;
      default:
        throw Error(fmt::format("{}: GGUF metadata {}: {} is not a scalar type",
                                out_.path().string(), key, gguf_type_name(type)));
    }
  }

  void put_value(const GgufValue& v, const std::string& key) {
    if (v.type == GgufType::STRING) return put_string(v.str);
    if (v.type != GgufType::ARRAY) return put_scalar(v.type, v.i, v.f, key);
    put<uint32_t>(static_cast<uint32_t>(v.elem));
    put<uint64_t>(v.array_size());
    switch (v.elem) {
      case GgufType::STRING:
        for (const auto& s : v.strings) put_string(s);
        break;
      case GgufType::ARRAY:
        for (const auto& a : v.arrays) put_value(a, key);
        break;
      case GgufType::F32:
      case GgufType::F64:
        for (double f : v.floats) put_scalar(v.elem, 0, f, key);
        break;
      default:
        for (int64_t i : v.ints) put_scalar(v.elem, i, 0, key);
        break;
    }
  }

 private:
  OutputFile& out_;
};

// An array value must hold its elements in the vector its element type selects, or the count
// written would not match the elements; catching this at set() names the key.
void check_value(const std::string& key, const GgufValue& v) {
  if (static_cast<uint32_t>(v.type) > static_cast<uint32_t>(GgufType::F64))
    throw Error(
        fmt::format("GGUF metadata {}: unknown value type {}", key, static_cast<uint32_t>(v.type)));
  if (!v.is_array()) return;
  size_t in_slot = 0;
  switch (v.elem) {
    case GgufType::STRING:
      in_slot = v.strings.size();
      break;
    case GgufType::ARRAY:
      in_slot = v.arrays.size();
      break;
    case GgufType::F32:
    case GgufType::F64:
      in_slot = v.floats.size();
      break;
    default:
      in_slot = v.ints.size();
      break;
  }
  if (static_cast<uint32_t>(v.elem) > static_cast<uint32_t>(GgufType::F64) ||
      in_slot != v.array_size())
    throw Error(fmt::format("GGUF metadata {}: array of {} holds elements of another kind", key,
                            gguf_type_name(v.elem)));
  for (const auto& a : v.arrays) check_value(key, a);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// GgufWriter

GgufWriter::GgufWriter(uint32_t alignment) : alignment_(alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0)
    throw Error(fmt::format("GGUF alignment {} is not a power of two", alignment));
}

void GgufWriter::set(const std::string& key, GgufValue value) {
  check_value(key, value);
  for (auto& [k, v] : metadata_)
    if (k == key) {
      v = std::move(value);
      return;
    }
  metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::erase(const std::string& key) {
  std::erase_if(metadata_, [&](const auto& kv) { return kv.first == key; });
}

void GgufWriter::copy_metadata(const GgufFile& src) {
  for (const auto& [k, v] : src.metadata()) set(k, v);
}

const GgufValue* GgufWriter::find(const std::string& key) const {
  for (const auto& [k, v] : metadata_)
    if (k == key) return &v;
  return nullptr;
}

GgufWriter::Entry& GgufWriter::new_entry(const std::string& name, TensorType type,
                                         std::vector<int64_t> shape) {
  auto bad = [&](const std::string& what) {
    return Error(fmt::format("GGUF tensor {}: {}", name, what));
  };
  if (name.empty()) throw Error("GGUF tensor with an empty name");
  if (name.size() > kMaxNameBytes)
    throw bad(fmt::format("name is {} bytes long (ggml allows {})", name.size(), kMaxNameBytes));
  for (const auto& e : tensors_)
    if (e.name == name) throw bad("added twice");
  if (shape.empty() || shape.size() > kMaxDims)
    throw bad(fmt::format("has {} dimensions (1 to {} allowed)", shape.size(), kMaxDims));
  uint64_t elements = 1;
  for (int64_t d : shape) {
    if (d <= 0)
      throw bad(fmt::format("shape {} has a non-positive dimension", shape_string(shape)));
    elements *= static_cast<uint64_t>(d);
  }
  const auto& ti = info(type);
  if (static_cast<uint64_t>(shape.back()) % ti.block_elems != 0)
    throw bad(fmt::format("rows of {} elements are not a whole number of {} blocks ({})",
                          shape.back(), ti.name, ti.block_elems));
  Entry e;
  e.name = name;
  e.type = type;
  e.shape = std::move(shape);
  e.nbytes = elements / ti.block_elems * ti.block_bytes;
  tensors_.push_back(std::move(e));
  return tensors_.back();
}

void GgufWriter::add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape,
                            std::span<const std::byte> data) {
  // Validate before inserting so a bad call leaves the writer unchanged.
  Entry& e = new_entry(name, type, std::move(shape));
  if (data.size() != e.nbytes) {
    const uint64_t want = e.nbytes;
    const std::string s = shape_string(e.shape);
    tensors_.pop_back();
    throw Error(fmt::format("GGUF tensor {}: {} bytes given, shape {} of {} needs {}", name,
                            data.size(), s, info(type).name, want));
  }
  e.data = data;
}

void GgufWriter::add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape,
                            std::vector<std::byte> data) {
  add_tensor(name, type, std::move(shape), std::span<const std::byte>(data));
  // The vector's heap block does not move when the vector itself is moved into owned_.
  owned_.push_back(std::move(data));
}

void GgufWriter::add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape,
                            Fill fill) {
  if (!fill) throw Error(fmt::format("GGUF tensor {}: no data", name));
  new_entry(name, type, std::move(shape)).fill = std::move(fill);
}

void GgufWriter::add_alias(const std::string& name, const std::string& same_as) {
  int target = -1;
  for (size_t k = 0; k < tensors_.size(); ++k)
    if (tensors_[k].name == same_as) target = static_cast<int>(k);
  if (target < 0)
    throw Error(fmt::format("GGUF tensor {}: alias of {}, which was not added", name, same_as));
  // Point at the tensor that owns the bytes, so aliases of aliases need no chain at write time.
  if (tensors_[target].alias_of >= 0) target = tensors_[target].alias_of;
  const Entry& t = tensors_[target];
  Entry& e = new_entry(name, t.type, t.shape);
  e.alias_of = target;
}

uint64_t GgufWriter::data_bytes() const {
  uint64_t n = 0;
  for (const auto& e : tensors_)
    if (e.alias_of < 0) n += e.nbytes;
  return n;
}

void GgufWriter::write(const fs::path& path, bool overwrite) const {
  // The alignment key must describe the layout actually written; a copied source value may not.
  std::vector<std::pair<std::string, GgufValue>> metadata = metadata_;
  auto align_it = std::find_if(metadata.begin(), metadata.end(),
                               [](const auto& kv) { return kv.first == "general.alignment"; });
  if (align_it != metadata.end())
    align_it->second = GgufValue::of_u32(alignment_);
  else if (alignment_ != 32)
    metadata.emplace_back("general.alignment", GgufValue::of_u32(alignment_));

  // Data offsets: each owning tensor aligned, in entry order; aliases reuse their target's.
  std::vector<uint64_t> offsets(tensors_.size());
  uint64_t end = 0;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const Entry& e = tensors_[k];
    if (e.alias_of >= 0) {
      offsets[k] = offsets[static_cast<size_t>(e.alias_of)];
      continue;
    }
    offsets[k] = end;
    end = (end + e.nbytes + alignment_ - 1) / alignment_ * alignment_;
  }

  OutputFile out(path, overwrite);
  Encoder enc(out);
  enc.put<uint32_t>(kMagic);
  enc.put<uint32_t>(kVersion);
  enc.put<uint64_t>(tensors_.size());
  enc.put<uint64_t>(metadata.size());
  for (const auto& [key, value] : metadata) {
    enc.put_string(key);
    enc.put<uint32_t>(static_cast<uint32_t>(value.type));
    enc.put_value(value, key);
  }
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const Entry& e = tensors_[k];
    enc.put_string(e.name);
    enc.put<uint32_t>(static_cast<uint32_t>(e.shape.size()));
    for (auto it = e.shape.rbegin(); it != e.shape.rend(); ++it)  // ggml: innermost first
      enc.put<uint64_t>(static_cast<uint64_t>(*it));
    enc.put<uint32_t>(static_cast<uint32_t>(e.type));
    enc.put<uint64_t>(offsets[k]);
  }
  out.pad_to(alignment_);

  const uint64_t data_start = out.size();
  std::vector<std::byte> scratch;
  for (size_t k = 0; k < tensors_.size(); ++k) {
    const Entry& e = tensors_[k];
    if (e.alias_of >= 0) continue;
    e.write_to(out, scratch);
    // Every tensor, the last included, is padded, so the data section is a whole number of
    // alignment units as other GGUF writers leave it.
    out.pad_to(alignment_);
    if (out.size() - data_start !=
        offsets[k] + (e.nbytes + alignment_ - 1) / alignment_ * alignment_)
      throw Error(fmt::format("{}: internal error: tensor {} landed at the wrong offset",
                              path.string(), e.name));
  }
  out.commit();
}

}  // namespace reprise
