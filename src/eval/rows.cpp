#include "eval/rows.h"

#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/utf8.h"

namespace grm::eval {

std::vector<Row> read_rows(const std::string& path) {
  const std::string text = read_file(path);
  std::vector<Row> rows;
  const size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    if (const size_t bad = find_invalid_utf8(text); bad != std::string::npos)
      throw Error(path + ": invalid UTF-8 at byte " + std::to_string(bad));
    nlohmann::json all;
    try {
      all = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      throw Error(path + ": not a valid JSON array: " + e.what());
    }
    for (size_t i = 0; i < all.size(); ++i) {
      Row r;
      r.where = path + ": row " + std::to_string(i + 1);
      if (!all[i].is_object()) r.error = "row is not a JSON object";
      else r.value = std::move(all[i]);
      rows.push_back(std::move(r));
    }
    return rows;
  }
  size_t line_no = 0, start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    Row r;
    r.where = path + ":" + std::to_string(line_no);
    if (!parse_json_line(line, r.value, r.error)) {
      r.value = nullptr;
    } else if (!r.value.is_object()) {
      r.error = "row is not a JSON object";
    }
    rows.push_back(std::move(r));
  }
  return rows;
}

const nlohmann::json& field(const nlohmann::json& row, const std::string& name) {
  const auto it = row.find(name);
  if (it == row.end() || it->is_null()) throw Error("missing field '" + name + "'");
  return *it;
}

std::string string_field(const nlohmann::json& row, const std::string& name) {
  const auto& v = field(row, name);
  if (!v.is_string()) throw Error("field '" + name + "' must be a string");
  return v.get<std::string>();
}

std::string id_text(const nlohmann::json& row, const std::string& name) {
  const auto it = row.find(name);
  if (it == row.end() || it->is_null()) return "";
  if (it->is_string()) return it->get<std::string>();
  return it->dump();
}

}  // namespace grm::eval
