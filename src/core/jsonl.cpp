#include "core/jsonl.h"

#include "core/error.h"
#include "core/utf8.h"

namespace grm {

bool parse_json_line(const std::string& line, nlohmann::json& out, std::string& error) {
  if (const size_t bad = find_invalid_utf8(line); bad != std::string::npos) {
    error = "invalid UTF-8 at byte " + std::to_string(bad);
    return false;
  }
  try {
    out = nlohmann::json::parse(line);
  } catch (const nlohmann::json::parse_error& e) {
    error = std::string("malformed JSON: ") + e.what();
    return false;
  }
  return true;
}

void for_each_jsonl(std::istream& in, const std::string& source,
                    const std::function<void(size_t, const nlohmann::json&)>& fn) {
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    nlohmann::json value;
    std::string error;
    const std::string where = source + ":" + std::to_string(line_no) + ": ";
    if (!parse_json_line(line, value, error)) throw Error(where + error);
    try {
      fn(line_no, value);
    } catch (const Error& e) {
      throw Error(where + e.what());
    } catch (const nlohmann::json::exception& e) {
      throw Error(where + e.what());
    }
  }
  if (in.bad()) throw Error(source + ": read error");
}

std::string dump_json(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace grm
