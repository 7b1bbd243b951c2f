#include "core/template.h"

#include <cstdlib>

#include <array>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/utf8.h"

namespace grm {

namespace fs = std::filesystem;

namespace {

constexpr std::array<const char*, 6> kPlaceholders = {"conversation", "query", "responses", "n", "score_min",
                                                      "score_max"};

bool known_placeholder(const std::string& s) {
  for (const char* p : kPlaceholders)
    if (s == p) return true;
  return false;
}

int parse_int_option(const std::string& value, const std::string& where) {
  try {
    size_t used = 0;
    const int v = std::stoi(value, &used);
    if (used != value.size()) throw std::invalid_argument("trailing");
    return v;
  } catch (const std::exception&) {
    throw Error(where + ": expected an integer, got '" + value + "'");
  }
}

std::string role_label(const std::string& role) {
  if (role == "user") return "User";
  if (role == "assistant") return "Assistant";
  return "System";
}

}  // namespace

Template Template::from_string(const std::string& text, const std::string& name) {
  if (!is_valid_utf8(text)) throw Error(name + ": template is not valid UTF-8");
  Template t;
  t.name_ = name;
  // Front matter.
  size_t pos = 0;
  int line_no = 0;
  while (text.compare(pos, 3, "%% ") == 0) {
    ++line_no;
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    const std::string line = text.substr(pos + 3, eol - pos - 3);
    const size_t colon = line.find(':');
    const std::string where = name + ":" + std::to_string(line_no);
    if (colon == std::string::npos) throw Error(where + ": front matter must be '%% key: value'");
    std::string key = line.substr(0, colon), value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ')) value.erase(value.begin());
    while (!value.empty() && (value.back() == ' ' || value.back() == '\r')) value.pop_back();
    if (key == "score_min") t.range_.lo = parse_int_option(value, where);
    else if (key == "score_max") t.range_.hi = parse_int_option(value, where);
    else throw Error(where + ": unknown template option '" + key + "'");
    pos = eol < text.size() ? eol + 1 : eol;
  }
  if (t.range_.lo >= t.range_.hi) throw Error(name + ": score_min must be below score_max");
  // Body.
  bool has_responses = false, has_context = false;
  std::string literal;
  while (pos < text.size()) {
    const size_t open = text.find("{{", pos);
    if (open == std::string::npos) {
      literal += text.substr(pos);
      break;
    }
    literal += text.substr(pos, open - pos);
    const size_t close = text.find("}}", open + 2);
    if (close == std::string::npos) throw Error(name + ": unterminated '{{' at byte " + std::to_string(open));
    const std::string ph = text.substr(open + 2, close - open - 2);
    if (!known_placeholder(ph)) throw Error(name + ": unknown placeholder '{{" + ph + "}}'");
    has_responses |= ph == "responses";
    has_context |= ph == "conversation" || ph == "query";
    if (!literal.empty()) t.pieces_.push_back({false, std::move(literal)});
    literal.clear();
    t.pieces_.push_back({true, ph});
    pos = close + 2;
  }
  if (!literal.empty()) t.pieces_.push_back({false, std::move(literal)});
  if (!has_responses) throw Error(name + ": template has no {{responses}} placeholder");
  if (!has_context) throw Error(name + ": template has neither {{conversation}} nor {{query}}");
  return t;
}

Template Template::load(const std::string& path) { return from_string(read_file(path), path); }

Template Template::builtin(const std::string& name) { return load(builtin_path(name)); }

std::string Template::builtin_path(const std::string& name) {
  std::vector<fs::path> dirs;
  if (const char* env = std::getenv("GRM_TEMPLATE_DIR")) dirs.emplace_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    dirs.push_back(exe.parent_path() / ".." / "templates");
    dirs.push_back(exe.parent_path() / ".." / "share" / "grm" / "templates");
  }
  dirs.emplace_back(fs::path(GRM_SOURCE_DIR) / "templates");
  for (const auto& d : dirs) {
    const fs::path p = d / (name + ".txt");
    if (fs::exists(p, ec)) return p.string();
  }
  throw Error("no built-in template named '" + name + "' (expected default, compact or single-binary)");
}

Template Template::resolve(const std::string& spec) {
  const bool is_path = spec.find('/') != std::string::npos ||
                       (spec.size() > 4 && spec.compare(spec.size() - 4, 4, ".txt") == 0);
  return is_path ? load(spec) : builtin(spec);
}

std::string render_response_blocks(const std::vector<std::string>& shown) {
  std::string out;
  for (size_t i = 0; i < shown.size(); ++i) {
    const std::string idx = std::to_string(i + 1);
    if (i) out += "\n\n";
    out += "[The Begin of Response " + idx + "]\n" + shown[i] + "\n[The End of Response " + idx + "]";
  }
  return out;
}

std::string render_conversation(const Conversation& conv) {
  std::string out;
  for (const auto& m : conv.messages) {
    if (!out.empty()) out += "\n\n";
    out += role_label(m.role) + ": " + m.content;
  }
  return out;
}

std::string Template::render(const Conversation& conv, const std::vector<std::string>& shown) const {
  std::string out;
  for (const auto& p : pieces_) {
    if (!p.is_placeholder) out += p.text;
    else if (p.text == "conversation") out += render_conversation(conv);
    else if (p.text == "query") out += conv.query();
    else if (p.text == "responses") out += render_response_blocks(shown);
    else if (p.text == "n") out += std::to_string(shown.size());
    else if (p.text == "score_min") out += std::to_string(range_.lo);
    else if (p.text == "score_max") out += std::to_string(range_.hi);
  }
  return out;
}

}  // namespace grm
