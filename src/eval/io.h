// Reading dataset and log files with errors that name the file and line.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <string>

namespace reprise::eval {

// The whole file; throws Error naming it when it cannot be read.
std::string read_text_file(const std::filesystem::path& path);

// One JSON document; throws Error "file: not valid JSON (...)".
nlohmann::json read_json_file(const std::filesystem::path& path);

// Calls fn(value, line_number) for each non-blank line; a line that is not JSON throws
// Error "file:line: not valid JSON (...)". Errors thrown by fn pass through unchanged.
void for_each_jsonl(const std::filesystem::path& path,
                    const std::function<void(const nlohmann::json&, int line)>& fn);

// The same, keeping each object's keys in file order.
void for_each_jsonl_ordered(const std::filesystem::path& path,
                            const std::function<void(const nlohmann::ordered_json&, int line)>& fn);

// Field access for dataset records: throws Error "<where>: needs \"key\" (<what>)" when the key is
// missing or has the wrong type.
std::string json_string(const nlohmann::json& j, const char* key, const std::string& where);
int64_t json_int(const nlohmann::json& j, const char* key, const std::string& where);
std::vector<std::string> json_strings(const nlohmann::json& j, const char* key,
                                      const std::string& where);

}  // namespace reprise::eval
