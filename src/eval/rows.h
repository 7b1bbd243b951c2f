// Reading benchmark rows from a JSON array file or a JSONL file, keeping malformed rows as errors.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace grm::eval {

struct Row {
  std::string where;    // "<path>:<line>" (JSONL) or "<path>: row <i>" (JSON array, 1-based)
  nlohmann::json value;  // the row when `error` is empty
  std::string error;     // why the row could not be read (bad JSON, bad UTF-8, not an object)
};

// A file whose first non-blank character is '[' is one JSON array of rows; anything else is JSONL (one row
// per non-blank line). A JSONL line that does not parse becomes a Row with `error` set; a JSON array that
// does not parse as a whole throws grm::Error (no row boundaries to recover). Throws grm::Error when the file
// cannot be read.
std::vector<Row> read_rows(const std::string& path);

// Field helpers for loaders: throw grm::Error naming the field when it is missing or has the wrong type.
const nlohmann::json& field(const nlohmann::json& row, const std::string& name);
std::string string_field(const nlohmann::json& row, const std::string& name);
// An id-like field (string or number) as text; "" when absent or null.
std::string id_text(const nlohmann::json& row, const std::string& name);

}  // namespace grm::eval
