// Line-oriented JSON input with errors that name the source and line.
#pragma once
#include <functional>
#include <istream>
#include <string>

#include <nlohmann/json.hpp>

namespace grm {

// Calls fn(line_number, parsed) for each non-blank line of `in`. A line that is not valid UTF-8 or not valid
// JSON throws grm::Error "<source>:<line>: <problem>". Errors thrown by fn that are grm::Error are re-thrown
// with the same "<source>:<line>: " prefix.
void for_each_jsonl(std::istream& in, const std::string& source,
                    const std::function<void(size_t line, const nlohmann::json& value)>& fn);

// Parses one line; on failure returns false and sets `error` (UTF-8 or JSON problem, with byte offset).
bool parse_json_line(const std::string& line, nlohmann::json& out, std::string& error);

// Serializes JSON for output; invalid UTF-8 inside strings (e.g. from a model) is replaced with U+FFFD.
std::string dump_json(const nlohmann::json& j);

}  // namespace grm
