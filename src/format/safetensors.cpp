#include "format/safetensors.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <unordered_set>

#include "util/describe.h"
#include "util/error.h"

namespace reprise {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// The safetensors reference implementation refuses headers above 100 MB; so do we, so that a
// hostile length cannot make us parse (and allocate for) gigabytes of "JSON".
constexpr uint64_t kMaxHeaderBytes = 100'000'000;

// nlohmann prefixes its messages with "[json.exception.parse_error.101] "; the rest is the useful
// part (line, column, what was read).
std::string json_error(const json::exception& e) {
  std::string_view w = e.what();
  if (w.starts_with("[json.exception.")) {
    auto close = w.find("] ");
    if (close != std::string_view::npos) w.remove_prefix(close + 2);
  }
  return printable(w);
}

// Parses a whole small JSON file (config.json, the shard index). The mapping is dropped afterwards.
json read_json_file(const fs::path& path, std::string_view what_for) {
  MappedFile f(path);
  auto bytes = f.bytes();
  const char* begin = reinterpret_cast<const char*>(bytes.data());
  try {
    return json::parse(begin, begin + bytes.size());
  } catch (const json::exception& e) {
    throw FormatError(f.path(), fmt::format("{} is not valid JSON: {}", what_for, json_error(e)));
  }
}

// Bytes per element of every dtype the format defines; nullopt for names we have never heard of
// (newer sub-byte types), whose sizes we therefore cannot check.
std::optional<uint64_t> dtype_size(std::string_view dtype) {
  static constexpr std::pair<std::string_view, uint64_t> kSizes[] = {
      {"BOOL", 1}, {"U8", 1},  {"I8", 1},  {"F8_E4M3", 1}, {"F8_E5M2", 1},
      {"I16", 2},  {"U16", 2}, {"F16", 2}, {"BF16", 2},    {"I32", 4},
      {"U32", 4},  {"F32", 4}, {"I64", 8}, {"U64", 8},     {"F64", 8},
  };
  for (const auto& [name, size] : kSizes)
    if (name == dtype) return size;
  return std::nullopt;
}

std::optional<TensorType> usable_type(std::string_view dtype) {
  if (dtype == "F32") return TensorType::F32;
  if (dtype == "F16") return TensorType::F16;
  if (dtype == "BF16") return TensorType::BF16;
  return std::nullopt;
}

uint64_t read_u64_le(const std::byte* p) {
  uint64_t v = 0;
  for (int k = 7; k >= 0; --k) v = (v << 8) | static_cast<uint64_t>(p[k]);
  return v;
}

// A tensor entry of a header, checked against the data section of its file.
struct Entry {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  uint64_t begin = 0;
  uint64_t end = 0;
};

class HeaderChecker {
 public:
  HeaderChecker(const std::string& file, uint64_t data_size) : file_(file), data_size_(data_size) {}

  [[noreturn]] void fail(const std::string& what) const { throw FormatError(file_, what); }

  Entry entry(const std::string& raw_name, const json& v) const {
    Entry e;
    e.name = raw_name;
    const std::string name = "tensor " + printable(raw_name);
    if (!v.is_object()) fail(fmt::format("{} is {}, expected an object", name, json_kind(v)));

    const json& dtype = field(v, "dtype", name);
    if (!dtype.is_string())
      fail(fmt::format("{}: dtype is {}, expected a string", name, json_kind(dtype)));
    e.dtype = dtype.get<std::string>();

    const json& shape = field(v, "shape", name);
    if (!shape.is_array())
      fail(fmt::format("{}: shape is {}, expected an array", name, json_kind(shape)));
    ShapeLimit limit;
    for (size_t d = 0; d < shape.size(); ++d) {
      const json& dim = shape[d];
      if (dim.is_number_integer() && !dim.is_number_unsigned())
        fail(fmt::format("{}: dimension {} is {}, expected a non-negative integer", name, d,
                         dim.get<int64_t>()));
      if (!dim.is_number_unsigned())
        fail(fmt::format("{}: dimension {} is {}, expected an integer", name, d, json_kind(dim)));
      const uint64_t n = dim.get<uint64_t>();
      if (n > ShapeLimit::kMaxDim) fail(fmt::format("{} has absurd dimension {}", name, n));
      if (!limit.add(n))
        fail(fmt::format("{}: shape {} has too many elements", name, shape.dump()));
      e.shape.push_back(static_cast<int64_t>(n));
    }
    const uint64_t elements = limit.elements();

    const json& offsets = field(v, "data_offsets", name);
    if (!offsets.is_array() || offsets.size() != 2)
      fail(fmt::format("{}: data_offsets is {}, expected an array of two integers", name,
                       offsets.is_array() ? offsets.dump() : std::string(json_kind(offsets))));
    for (const json& o : offsets)
      if (!o.is_number_unsigned())
        fail(fmt::format("{}: data_offsets {} are not two non-negative integers", name,
                         offsets.dump()));
    e.begin = offsets[0].get<uint64_t>();
    e.end = offsets[1].get<uint64_t>();
    if (e.begin > e.end)
      fail(fmt::format("{}: data_offsets [{}, {}] end before they begin", name, e.begin, e.end));
    if (e.end > data_size_)
      fail(fmt::format("{} data [{}, {}) lies past the end of the file (data section has {} bytes)",
                       name, e.begin, e.end, data_size_));

    // Unknown dtypes keep only the bounds check above; their bytes are never handed out.
    if (auto size = dtype_size(e.dtype)) {
      const uint64_t want = elements * *size;
      if (e.end - e.begin != want)
        fail(fmt::format("{}: data_offsets [{}, {}] hold {} bytes, but shape {} of {} needs {}",
                         name, e.begin, e.end, e.end - e.begin, shape_string(e.shape),
                         printable(e.dtype), want));
    }
    return e;
  }

 private:
  const json& field(const json& v, const char* key, const std::string& name) const {
    auto it = v.find(key);
    if (it == v.end()) fail(fmt::format("{} has no {}", name, key));
    return *it;
  }

  const std::string& file_;
  uint64_t data_size_;
};

}  // namespace

SafetensorsModel::SafetensorsModel() : config_(std::make_unique<json>(json::object())) {}
SafetensorsModel::~SafetensorsModel() = default;

std::unique_ptr<SafetensorsModel> SafetensorsModel::open(const fs::path& path) {
  std::error_code ec;
  const auto status = fs::status(path, ec);
  if (!fs::exists(status)) throw FormatError(path.string(), "no such file or directory");

  std::unique_ptr<SafetensorsModel> m(new SafetensorsModel());
  std::optional<fs::path> index_file;
  if (fs::is_directory(status)) {
    m->dir_ = path;
    // transformers prefers the single file when both are present; so do we.
    if (fs::exists(path / "model.safetensors")) {
      m->load_shard(path / "model.safetensors");
    } else if (fs::exists(path / "model.safetensors.index.json")) {
      index_file = path / "model.safetensors.index.json";
    } else {
      throw FormatError(path.string(),
                        "no model.safetensors or model.safetensors.index.json in this directory");
    }
  } else {
    m->dir_ = path.has_parent_path() ? path.parent_path() : fs::path(".");
    if (path.filename().string().ends_with(".index.json"))
      index_file = path;
    else
      m->load_shard(path);
  }

  if (index_file) {
    const std::string index_name = index_file->string();
    auto fail = [&](const std::string& what) { throw FormatError(index_name, what); };
    const json index = read_json_file(*index_file, "index");
    if (!index.is_object()) fail(fmt::format("index is {}, expected an object", json_kind(index)));
    auto wm = index.find("weight_map");
    if (wm == index.end()) fail("missing field weight_map");
    if (!wm->is_object()) fail(fmt::format("weight_map is {}, expected an object", json_kind(*wm)));
    if (wm->empty()) fail("weight_map lists no tensors");

    std::set<std::string> shard_names;  // sorted, so model-00001-of-N loads first
    for (const auto& [name, shard] : wm->items()) {
      if (!shard.is_string())
        fail(fmt::format("weight_map entry {} is {}, expected a string", printable(name),
                         json_kind(shard)));
      const std::string& s = shard.get_ref<const std::string&>();
      // Shards live beside the index; anything else is a path an index has no business naming.
      if (s.empty() || s == "." || s == ".." || s.find('/') != std::string::npos ||
          s.find('\0') != std::string::npos)
        fail(fmt::format("weight_map puts tensor {} in \"{}\", which is not a file name",
                         printable(name), printable(s)));
      shard_names.insert(s);
    }
    const fs::path shard_dir = index_file->parent_path();
    for (const auto& s : shard_names)
      if (!fs::exists(shard_dir / s))
        fail(fmt::format("weight_map names shard {}, which does not exist", printable(s)));
    for (const auto& s : shard_names) m->load_shard(shard_dir / s);

    for (const auto& [name, shard] : wm->items()) {
      const std::string& s = shard.get_ref<const std::string&>();
      auto it = m->owner_.find(name);
      if (it == m->owner_.end() || fs::path(m->shards_[it->second].path()).filename().string() != s)
        fail(fmt::format("weight_map puts tensor {} in {}, but that file has no such tensor",
                         printable(name), printable(s)));
    }
  }

  const fs::path config = m->dir_ / "config.json";
  if (fs::exists(config)) {
    json c = read_json_file(config, "config.json");
    if (!c.is_object())
      throw FormatError(config.string(),
                        fmt::format("config is {}, expected an object", json_kind(c)));
    *m->config_ = std::move(c);
  }
  return m;
}

void SafetensorsModel::load_shard(const fs::path& path) {
  MappedFile file(path);
  const std::string& name = file.path();
  const auto bytes = file.bytes();
  auto fail = [&](const std::string& what) { throw FormatError(name, what); };

  if (bytes.size() < 8)
    fail(fmt::format("truncated: the header length needs 8 bytes, the file has {}", bytes.size()));
  const uint64_t header_len = read_u64_le(bytes.data());
  if (header_len > bytes.size() - 8)
    fail(fmt::format("header length {} is longer than the file ({} bytes)", header_len,
                     bytes.size()));
  if (header_len > kMaxHeaderBytes)
    fail(fmt::format("header length {} exceeds the {}-byte limit", header_len, kMaxHeaderBytes));

  // nlohmann keeps the last of duplicate keys silently; catch them while parsing instead.
  std::unordered_set<std::string> seen;
  std::string duplicate;
  auto note_keys = [&](int depth, json::parse_event_t event, json& parsed) {
    if (depth == 1 && event == json::parse_event_t::key && duplicate.empty() &&
        !seen.insert(parsed.get<std::string>()).second)
      duplicate = parsed.get<std::string>();
    return true;
  };
  const char* text = reinterpret_cast<const char*>(bytes.data() + 8);
  json header;
  try {
    header = json::parse(text, text + header_len, note_keys);
  } catch (const json::exception& e) {
    fail("header is not valid JSON: " + json_error(e));
  }
  if (!header.is_object()) fail(fmt::format("header is {}, expected an object", json_kind(header)));
  if (!duplicate.empty()) fail(fmt::format("tensor {} appears twice", printable(duplicate)));

  const uint64_t data_start = 8 + header_len;
  HeaderChecker check(name, bytes.size() - data_start);
  std::vector<Entry> entries;
  entries.reserve(header.size());
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object())
        fail(fmt::format("__metadata__ is {}, expected an object", json_kind(value)));
      continue;
    }
    entries.push_back(check.entry(key, value));
  }
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return a.begin != b.begin ? a.begin < b.begin : a.name < b.name;
  });

  const size_t shard = shards_.size();
  for (const auto& e : entries) {
    auto [it, inserted] = owner_.emplace(e.name, shard);
    if (!inserted)
      fail(fmt::format("tensor {} is also in {}", printable(e.name), shards_[it->second].path()));
  }
  for (auto& e : entries) {
    auto type = usable_type(e.dtype);
    if (!type) {
      unsupported_.emplace(e.name, Unsupported{name, e.dtype});
      continue;
    }
    TensorView view;
    view.name = e.name;
    view.type = *type;
    view.shape = std::move(e.shape);
    view.data = bytes.subspan(data_start + e.begin, e.end - e.begin);
    index_.emplace(view.name, views_.size());
    views_.push_back(std::move(view));
  }
  // Moving a MappedFile keeps its mapping where it is, so the views above stay valid.
  shards_.push_back(std::move(file));
}

std::vector<std::string> SafetensorsModel::files() const {
  std::vector<std::string> out;
  out.reserve(shards_.size());
  for (const auto& f : shards_) out.push_back(f.path());
  return out;
}

const TensorView* SafetensorsModel::tensor(std::string_view name) const {
  const std::string key(name);
  if (auto it = index_.find(key); it != index_.end()) return &views_[it->second];
  if (auto it = unsupported_.find(key); it != unsupported_.end())
    throw FormatError(it->second.file,
                      fmt::format("tensor {} has dtype {}, which reprise cannot use (supported: "
                                  "F32, F16, BF16)",
                                  printable(key), printable(it->second.dtype)));
  return nullptr;
}

}  // namespace reprise
