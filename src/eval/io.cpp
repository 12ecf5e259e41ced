#include "eval/io.h"

#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "util/error.h"

namespace reprise::eval {
namespace {

// nlohmann's messages start with "[json.exception.parse_error.101] "; keep the part after it.
std::string short_json_error(const std::exception& e) {
  std::string s = e.what();
  const size_t at = s.find("] ");
  if (s.rfind("[json.exception", 0) == 0 && at != std::string::npos) s.erase(0, at + 2);
  for (char& c : s)
    if (c == '\n') c = ' ';
  return s;
}

// A folder opens as an empty stream; say what it is instead of reading "no text" from it.
std::ifstream open_input(const std::filesystem::path& path) {
  if (std::filesystem::is_directory(path))
    throw Error(fmt::format("{}: is a folder, not a text file", path.string()));
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error(fmt::format("{}: cannot open file", path.string()));
  return f;
}

}  // namespace

std::string read_text_file(const std::filesystem::path& path) {
  std::ifstream f = open_input(path);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

nlohmann::json read_json_file(const std::filesystem::path& path) {
  const std::string text = read_text_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON ({})", path.string(), short_json_error(e)));
  }
}

namespace {

template <typename Json>
void jsonl_lines(const std::filesystem::path& path,
                 const std::function<void(const Json&, int)>& fn) {
  std::ifstream f = open_input(path);
  std::string line;
  for (int n = 1; std::getline(f, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    Json j;
    try {
      j = Json::parse(line);
    } catch (const nlohmann::json::exception& e) {
      throw Error(fmt::format("{}:{}: not valid JSON ({})", path.string(), n, short_json_error(e)));
    }
    fn(j, n);
  }
}

}  // namespace

void for_each_jsonl(const std::filesystem::path& path,
                    const std::function<void(const nlohmann::json&, int)>& fn) {
  jsonl_lines<nlohmann::json>(path, fn);
}

void for_each_jsonl_ordered(const std::filesystem::path& path,
                            const std::function<void(const nlohmann::ordered_json&, int)>& fn) {
  jsonl_lines<nlohmann::ordered_json>(path, fn);
}

std::string json_string(const nlohmann::json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string())
    throw Error(fmt::format("{}: needs \"{}\" (a string)", where, key));
  return it->get<std::string>();
}

int64_t json_int(const nlohmann::json& j, const char* key, const std::string& where) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer())
    throw Error(fmt::format("{}: needs \"{}\" (an integer)", where, key));
  return it->get<int64_t>();
}

std::vector<std::string> json_strings(const nlohmann::json& j, const char* key,
                                      const std::string& where) {
  auto it = j.find(key);
  bool ok = it != j.end() && it->is_array() && !it->empty();
  if (ok)
    for (const auto& v : *it) ok = ok && v.is_string();
  if (!ok) throw Error(fmt::format("{}: needs \"{}\" (a non-empty list of strings)", where, key));
  return it->get<std::vector<std::string>>();
}

}  // namespace reprise::eval
