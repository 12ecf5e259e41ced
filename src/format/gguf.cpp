#include "format/gguf.h"

#include <fmt/format.h>

#include <cstring>
#include <limits>

#include "util/error.h"

namespace reprise {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMaxNameLength = 1024;
constexpr int kMaxArrayDepth = 4;
// Metadata is widened when parsed (a u8 array element becomes an int64_t, a nested array a whole
// GgufValue), so the file-size checks alone would let a hostile file ask for ~14x its size. The
// largest real vocabularies (256k tokens plus merges) need a few tens of MiB parsed.
constexpr uint64_t kMaxMetadataBytes = uint64_t{512} << 20;

// Sequential reader that refuses to step past the end of the mapped bytes.
class Cursor {
 public:
  Cursor(std::span<const std::byte> bytes, const std::string& file) : bytes_(bytes), file_(file) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  template <typename T>
  T read(std::string_view field) {
    need(sizeof(T), field);
    T v;
    std::memcpy(&v, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  std::string read_string(std::string_view field, uint64_t max_len = UINT64_MAX) {
    auto len = read<uint64_t>(field);
    if (len > max_len) fail(fmt::format("{} has length {} (limit {})", field, len, max_len));
    need(len, field);
    std::string s(reinterpret_cast<const char*>(bytes_.data() + pos_), len);
    pos_ += len;
    return s;
  }

  // Checks that `count` items of at least `min_item_bytes` each can still fit in the file.
  void check_count(uint64_t count, uint64_t min_item_bytes, std::string_view field) const {
    if (min_item_bytes && count > remaining() / min_item_bytes)
      fail(fmt::format("{} is {}, more than the {} bytes left in the file can hold", field, count,
                       remaining()));
  }

  // Accounts for `count` parsed elements of `bytes_each` in memory, refusing past the budget.
  void charge(uint64_t count, uint64_t bytes_each, std::string_view field) {
    const uint64_t left = kMaxMetadataBytes - charged_;
    if (count > left / bytes_each)
      fail(fmt::format("{}: metadata would need more than {} MiB of memory once parsed", field,
                       kMaxMetadataBytes >> 20));
    charged_ += count * bytes_each;
  }

  [[noreturn]] void fail(const std::string& what) const { throw FormatError(file_, what); }

 private:
  void need(uint64_t n, std::string_view field) const {
    if (n > remaining())
      fail(fmt::format("truncated: {} needs {} bytes at offset {}, only {} left", field, n, pos_,
                       remaining()));
  }

  std::span<const std::byte> bytes_;
  const std::string& file_;
  uint64_t pos_ = 0;
  uint64_t charged_ = 0;
};

uint64_t scalar_size(GgufType t) {
  switch (t) {
    case GgufType::U8:
    case GgufType::I8:
    case GgufType::BOOL:
      return 1;
    case GgufType::U16:
    case GgufType::I16:
      return 2;
    case GgufType::U32:
    case GgufType::I32:
    case GgufType::F32:
      return 4;
    case GgufType::U64:
    case GgufType::I64:
    case GgufType::F64:
      return 8;
    case GgufType::STRING:
      return 8;  // at least the length prefix
    case GgufType::ARRAY:
      return 12;  // at least element type + count
  }
  return 0;
}

bool valid_type(uint32_t t) {
  return t <= static_cast<uint32_t>(GgufType::F64);
}

bool is_float(GgufType t) {
  return t == GgufType::F32 || t == GgufType::F64;
}

// Reads one scalar of type t into (i, f); strings and arrays are handled by the caller.
void read_scalar(Cursor& c, GgufType t, int64_t& i, double& f, std::string_view field) {
  switch (t) {
    case GgufType::U8:
      i = c.read<uint8_t>(field);
      break;
    case GgufType::I8:
      i = c.read<int8_t>(field);
      break;
    case GgufType::U16:
      i = c.read<uint16_t>(field);
      break;
    case GgufType::I16:
      i = c.read<int16_t>(field);
      break;
    case GgufType::U32:
      i = c.read<uint32_t>(field);
      break;
    case GgufType::I32:
      i = c.read<int32_t>(field);
      break;
    case GgufType::U64:
      i = static_cast<int64_t>(c.read<uint64_t>(field));
      break;
    case GgufType::I64:
      i = c.read<int64_t>(field);
      break;
    case GgufType::F32:
      f = c.read<float>(field);
      break;
    case GgufType::F64:
      f = c.read<double>(field);
      break;
    case GgufType::BOOL: {
      auto b = c.read<uint8_t>(field);
      if (b > 1) c.fail(fmt::format("{} is a bool with value {}", field, b));
      i = b;
      break;
    }
    default:
      c.fail(fmt::format("{}: not a scalar type", field));
  }
}

GgufValue read_value(Cursor& c, GgufType type, const std::string& field, int depth) {
  GgufValue v;
  v.type = type;
  if (type == GgufType::STRING) {
    v.str = c.read_string(field);
    c.charge(v.str.size(), 1, field);
    return v;
  }
  if (type != GgufType::ARRAY) {
    read_scalar(c, type, v.i, v.f, field);
    return v;
  }
  if (depth >= kMaxArrayDepth) c.fail(fmt::format("{}: arrays nested too deeply", field));
  auto elem = c.read<uint32_t>(field + " array type");
  if (!valid_type(elem)) c.fail(fmt::format("{}: unknown array element type {}", field, elem));
  v.elem = static_cast<GgufType>(elem);
  auto n = c.read<uint64_t>(field + " array length");
  c.check_count(n, scalar_size(v.elem), field + " array length");
  if (v.elem == GgufType::STRING) {
    c.charge(n, sizeof(std::string), field);
    v.strings.reserve(n);
    for (uint64_t k = 0; k < n; ++k) {
      v.strings.push_back(c.read_string(field));
      c.charge(v.strings.back().size(), 1, field);
    }
  } else if (v.elem == GgufType::ARRAY) {
    c.charge(n, sizeof(GgufValue), field);
    v.arrays.reserve(n);
    for (uint64_t k = 0; k < n; ++k) v.arrays.push_back(read_value(c, v.elem, field, depth + 1));
  } else if (is_float(v.elem)) {
    c.charge(n, sizeof(double), field);
    v.floats.resize(n);
    int64_t unused = 0;
    for (uint64_t k = 0; k < n; ++k) read_scalar(c, v.elem, unused, v.floats[k], field);
  } else {
    c.charge(n, sizeof(int64_t), field);
    v.ints.resize(n);
    double unused = 0;
    for (uint64_t k = 0; k < n; ++k) read_scalar(c, v.elem, v.ints[k], unused, field);
  }
  return v;
}

}  // namespace

std::string_view gguf_type_name(GgufType t) {
  static constexpr std::string_view names[] = {"u8",  "i8",  "u16",  "i16",    "u32",
                                               "i32", "f32", "bool", "string", "array",
                                               "u64", "i64", "f64"};
  auto k = static_cast<uint32_t>(t);
  return k < std::size(names) ? names[k] : "?";
}

size_t GgufValue::array_size() const {
  return ints.size() + floats.size() + strings.size() + arrays.size();
}

GgufValue GgufValue::of_string(std::string s) {
  GgufValue v;
  v.type = GgufType::STRING;
  v.str = std::move(s);
  return v;
}
GgufValue GgufValue::of_u32(uint32_t x) {
  GgufValue v;
  v.type = GgufType::U32;
  v.i = x;
  return v;
}
GgufValue GgufValue::of_i32(int32_t x) {
  GgufValue v;
  v.type = GgufType::I32;
  v.i = x;
  return v;
}
GgufValue GgufValue::of_f32(float x) {
  GgufValue v;
  v.type = GgufType::F32;
  v.f = x;
  return v;
}
GgufValue GgufValue::of_bool(bool x) {
  GgufValue v;
  v.type = GgufType::BOOL;
  v.i = x;
  return v;
}

std::string format_value(const GgufValue& v, size_t max_items) {
  switch (v.type) {
    case GgufType::STRING: {
      std::string s = v.str.size() > 60 ? v.str.substr(0, 60) + "..." : v.str;
      for (char& ch : s)
        if (ch == '\n') ch = ' ';
      return fmt::format("\"{}\"", s);
    }
    case GgufType::F32:
    case GgufType::F64:
      return fmt::format("{}", v.f);
    case GgufType::BOOL:
      return v.i ? "true" : "false";
    case GgufType::U64:
      return fmt::format("{}", static_cast<uint64_t>(v.i));
    case GgufType::ARRAY: {
      std::string out = fmt::format("[{}; {}]", gguf_type_name(v.elem), v.array_size());
      size_t shown = std::min(max_items, v.array_size());
      if (shown == 0) return out;
      out += " ";
      for (size_t k = 0; k < shown; ++k) {
        if (k) out += ", ";
        if (!v.strings.empty())
          out += fmt::format("\"{}\"", v.strings[k]);
        else if (!v.floats.empty())
          out += fmt::format("{}", v.floats[k]);
        else if (!v.ints.empty())
          out += fmt::format("{}", v.ints[k]);
        else
          out += format_value(v.arrays[k], 2);
      }
      if (shown < v.array_size()) out += ", ...";
      return out;
    }
    default:
      return fmt::format("{}", v.i);
  }
}

std::unique_ptr<GgufFile> GgufFile::open(const std::filesystem::path& path) {
  std::unique_ptr<GgufFile> g(new GgufFile(MappedFile(path)));
  g->parse();
  return g;
}

void GgufFile::parse() {
  Cursor c(file_.bytes(), file_.path());
  auto magic = c.read<uint32_t>("magic");
  if (magic != kMagic) c.fail("wrong magic: not a GGUF file");
  version_ = c.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3)
    c.fail(fmt::format("unsupported GGUF version {} (supported: 2, 3)", version_));
  auto n_tensors = c.read<uint64_t>("tensor count");
  auto n_kv = c.read<uint64_t>("metadata count");
  // The smallest metadata entry is a 0-length key, a type and a 1-byte value: 13 bytes.
  c.check_count(n_kv, 13, "metadata count");

  metadata_.reserve(n_kv);
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.read_string(fmt::format("metadata key #{}", k), kMaxNameLength);
    auto t = c.read<uint32_t>(fmt::format("type of metadata {}", key));
    if (!valid_type(t)) c.fail(fmt::format("metadata {} has unknown value type {}", key, t));
    GgufValue v = read_value(c, static_cast<GgufType>(t), "metadata " + key, 0);
    if (!metadata_index_.emplace(key, metadata_.size()).second)
      c.fail(fmt::format("duplicate metadata key {}", key));
    metadata_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufType::U32 && a->type != GgufType::I32 && a->type != GgufType::U64)
      c.fail("metadata general.alignment is not an integer");
    if (a->i <= 0 || (a->i & (a->i - 1)) != 0 || a->i > (1 << 20))
      c.fail(fmt::format("metadata general.alignment is {}, not a power of two", a->i));
    alignment_ = static_cast<uint64_t>(a->i);
  }

  // The smallest tensor record: empty name (8) + n_dims (4) + type (4) + offset (8).
  c.check_count(n_tensors, 24, "tensor count");
  infos_.reserve(n_tensors);
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensorInfo ti;
    ti.name = c.read_string(fmt::format("name of tensor #{}", k), kMaxNameLength);
    const std::string field = "tensor " + ti.name;
    auto n_dims = c.read<uint32_t>(field + " dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      c.fail(fmt::format("{} has {} dimensions (1 to {} allowed)", field, n_dims, kMaxDims));
    ShapeLimit limit;
    for (uint32_t d = 0; d < n_dims; ++d) {
      auto ne = c.read<uint64_t>(field + " dimension");
      if (!limit.add(ne)) c.fail(fmt::format("{} has absurd dimension {}", field, ne));
      ti.ne.push_back(ne);
    }
    const uint64_t elements = limit.elements();
    ti.type_id = c.read<uint32_t>(field + " type");
    auto type = tensor_type_info(ti.type_id);
    if (!type) c.fail(fmt::format("{} has unknown tensor type {}", field, ti.type_id));
    if (ti.ne[0] % type->block_elems != 0)
      c.fail(fmt::format("{}: row of {} elements is not a whole number of {} blocks", field,
                         ti.ne[0], type->name));
    ti.nbytes = elements / type->block_elems * type->block_bytes;
    ti.offset = c.read<uint64_t>(field + " offset");
    if (!tensor_index_.emplace(ti.name, infos_.size()).second)
      c.fail(fmt::format("duplicate tensor name {}", ti.name));
    infos_.push_back(std::move(ti));
  }

  data_offset_ = (c.pos() + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data_offset_ > file_.size())
    c.fail(fmt::format("truncated: tensor data should start at offset {}, file has {} bytes",
                       data_offset_, file_.size()));
  const uint64_t data_size = n_tensors > 0 ? file_.size() - data_offset_ : 0;

  views_.reserve(infos_.size());
  for (const auto& ti : infos_) {
    if (ti.offset % alignment_ != 0)
      c.fail(fmt::format("tensor {} data offset {} is not aligned to {} bytes", ti.name, ti.offset,
                         alignment_));
    if (ti.offset > data_size || ti.nbytes > data_size - ti.offset)
      c.fail(
          fmt::format("tensor {} data [{}, {}) lies past the end of the file (data section has "
                      "{} bytes)",
                      ti.name, ti.offset, ti.offset + ti.nbytes, data_size));
    TensorView view;
    view.name = ti.name;
    view.type = static_cast<TensorType>(ti.type_id);
    for (auto it = ti.ne.rbegin(); it != ti.ne.rend(); ++it)
      view.shape.push_back(static_cast<int64_t>(*it));
    view.data = file_.bytes().subspan(data_offset_ + ti.offset, ti.nbytes);
    views_.push_back(std::move(view));
  }
}

const GgufValue* GgufFile::find(std::string_view key) const {
  auto it = metadata_index_.find(std::string(key));
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

std::optional<std::string> GgufFile::get_string(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::STRING)
    throw FormatError(
        path(), fmt::format("metadata {} is {}, expected a string", key, gguf_type_name(v->type)));
  return v->str;
}

std::optional<int64_t> GgufFile::get_int(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type == GgufType::STRING || v->type == GgufType::ARRAY || is_float(v->type) ||
      v->type == GgufType::BOOL)
    throw FormatError(path(), fmt::format("metadata {} is {}, expected an integer", key,
                                          gguf_type_name(v->type)));
  return v->i;
}

std::optional<double> GgufFile::get_float(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (is_float(v->type)) return v->f;
  if (v->type == GgufType::STRING || v->type == GgufType::ARRAY || v->type == GgufType::BOOL)
    throw FormatError(
        path(), fmt::format("metadata {} is {}, expected a number", key, gguf_type_name(v->type)));
  return static_cast<double>(v->i);
}

std::optional<bool> GgufFile::get_bool(std::string_view key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::BOOL)
    throw FormatError(
        path(), fmt::format("metadata {} is {}, expected a bool", key, gguf_type_name(v->type)));
  return v->i != 0;
}

std::string GgufFile::require_string(std::string_view key) const {
  auto v = get_string(key);
  if (!v) throw FormatError(path(), fmt::format("missing required metadata {}", key));
  return *v;
}

int64_t GgufFile::require_int(std::string_view key) const {
  auto v = get_int(key);
  if (!v) throw FormatError(path(), fmt::format("missing required metadata {}", key));
  return *v;
}

const TensorView* GgufFile::tensor(std::string_view name) const {
  auto it = tensor_index_.find(std::string(name));
  return it == tensor_index_.end() ? nullptr : &views_[it->second];
}

std::string shape_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t k = 0; k < shape.size(); ++k) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + "]";
}

}  // namespace reprise
