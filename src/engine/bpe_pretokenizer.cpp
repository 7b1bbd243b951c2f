// Byte-level alphabet, PCRE2 regex wrapper and the HF pre-tokenizer steps for byte-level BPE.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "engine/bpe_pretokenizer.h"

#include <pcre2.h>

#include <algorithm>

#include "core/error.h"

namespace grm::engine::bpe {
namespace {

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// GPT-2's table: printable Latin-1 bytes spell themselves, the other 68 map to U+0100.. in byte order.
struct Alphabet {
  std::array<std::string, 256> spell;
  std::array<int, 512> byte_of{};  // code point → byte, -1 when outside the alphabet
  Alphabet() {
    byte_of.fill(-1);
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const uint32_t cp = printable ? b : next++;
      append_utf8(spell[b], cp);
      byte_of[cp] = static_cast<int>(b);
    }
  }
};

const Alphabet& alphabet() {
  static const Alphabet a;
  return a;
}

// Decodes the code point of the valid UTF-8 character at s[i] (length n).
uint32_t decode_cp(std::string_view s, size_t i, size_t n) {
  const auto u = [&](size_t k) { return static_cast<uint32_t>(static_cast<unsigned char>(s[i + k])); };
  switch (n) {
    case 1: return u(0);
    case 2: return ((u(0) & 0x1F) << 6) | (u(1) & 0x3F);
    case 3: return ((u(0) & 0x0F) << 12) | ((u(1) & 0x3F) << 6) | (u(2) & 0x3F);
    default: return ((u(0) & 0x07) << 18) | ((u(1) & 0x3F) << 12) | ((u(2) & 0x3F) << 6) | (u(3) & 0x3F);
  }
}

std::string pcre2_message(int code) {
  PCRE2_UCHAR buf[256];
  pcre2_get_error_message(code, buf, sizeof buf);
  return reinterpret_cast<const char*>(buf);
}

bool get_bool(const nlohmann::json& j, const char* key, bool def) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_boolean()) throw Error(std::string("pre_tokenizer field '") + key + "' is not a boolean");
  return it->get<bool>();
}

}  // namespace

const std::array<std::string, 256>& byte_to_unicode() { return alphabet().spell; }

std::optional<std::string> unicode_to_bytes(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (size_t i = 0; i < token.size();) {
    const size_t n = utf8_char_len(token, i);
    if (n == 0) return std::nullopt;
    const uint32_t cp = decode_cp(token, i, n);
    if (cp >= alphabet().byte_of.size() || alphabet().byte_of[cp] < 0) return std::nullopt;
    out += static_cast<char>(alphabet().byte_of[cp]);
    i += n;
  }
  return out;
}

std::string bytes_to_unicode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) out += alphabet().spell[c];
  return out;
}

size_t utf8_char_len(std::string_view s, size_t i) {
  const auto at = [&](size_t k) -> unsigned { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  const auto cont = [&](size_t k) { return (at(k) & 0xC0) == 0x80; };
  const unsigned c = at(0);
  if (i >= s.size()) return 0;
  if (c < 0x80) return 1;
  if (c < 0xC2) return 0;
  if (c < 0xE0) return cont(1) ? 2 : 0;
  if (c < 0xF0) {
    if (!cont(1) || !cont(2)) return 0;
    if (c == 0xE0 && at(1) < 0xA0) return 0;   // overlong
    if (c == 0xED && at(1) >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (c < 0xF5) {
    if (!cont(1) || !cont(2) || !cont(3)) return 0;
    if (c == 0xF0 && at(1) < 0x90) return 0;   // overlong
    if (c == 0xF4 && at(1) >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

// ---- Regex ---------------------------------------------------------------------------------------

Regex::Regex(const std::string& pattern) : pattern_(pattern) {
  int err = 0;
  PCRE2_SIZE off = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &off, nullptr);
  if (!code)
    throw Error("cannot compile regex /" + pattern + "/ at offset " + std::to_string(off) + ": " + pcre2_message(err));
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // best effort: the interpreter is used when JIT is unavailable
  code_ = std::shared_ptr<void>(code, [](void* p) { pcre2_code_free(static_cast<pcre2_code*>(p)); });
}

std::vector<std::pair<size_t, size_t>> Regex::find_all(std::string_view s) const {
  std::vector<std::pair<size_t, size_t>> out;
  auto* code = static_cast<pcre2_code*>(code_.get());
  std::unique_ptr<pcre2_match_data, void (*)(pcre2_match_data*)> md(pcre2_match_data_create_from_pattern(code, nullptr),
                                                                    pcre2_match_data_free);
  const auto subject = reinterpret_cast<PCRE2_SPTR>(s.data());
  size_t start = 0;
  uint32_t options = 0;
  while (start <= s.size()) {
    int rc = pcre2_match(code, subject, s.size(), start, options, md.get(), nullptr);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {  // very long runs: retry in the interpreter (heap-based)
      options |= PCRE2_NO_JIT;
      continue;
    }
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) throw Error("regex /" + pattern_ + "/ failed: " + pcre2_message(rc));
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md.get());
    const size_t b = ov[0], e = ov[1];
    if (e > b) {
      out.emplace_back(b, e);
      start = e;
    } else {  // empty match: step over one character, as Oniguruma's find_iter does
      if (b >= s.size()) break;
      const size_t n = utf8_char_len(s, b);
      start = b + (n ? n : 1);
    }
  }
  return out;
}

// ---- PreTokenizer --------------------------------------------------------------------------------

PreTokenizer::Step PreTokenizer::parse_step(const nlohmann::json& j, bool& saw_byte_level) {
  if (!j.is_object() || !j.contains("type") || !j["type"].is_string())
    throw Error("pre_tokenizer step without a \"type\": " + j.dump());
  if (saw_byte_level) throw Error("pre_tokenizer steps after ByteLevel are not supported");
  const std::string type = j["type"].get<std::string>();
  Step step;
  if (type == "ByteLevel") {
    saw_byte_level = true;
    step.byte_level = true;
    step.add_prefix_space = get_bool(j, "add_prefix_space", true);
    if (get_bool(j, "use_regex", true)) step.regex.emplace(kGpt2Pattern);
    return step;
  }
  if (type == "Digits") {
    // HF: char::is_numeric (Unicode N), each digit Isolated or runs Contiguous.
    step.regex.emplace(R"(\p{N})");
    step.behavior = get_bool(j, "individual_digits", false) ? Behavior::Isolated : Behavior::Contiguous;
    return step;
  }
  if (type != "Split") throw Error("unsupported pre_tokenizer type '" + type + "'");
  const auto& pat = j.value("pattern", nlohmann::json());
  if (pat.contains("Regex") && pat["Regex"].is_string()) {
    step.regex.emplace(pat["Regex"].get<std::string>());
  } else if (pat.contains("String") && pat["String"].is_string()) {
    step.literal = pat["String"].get<std::string>();
  } else {
    throw Error("Split pre_tokenizer needs pattern {\"Regex\": ...} or {\"String\": ...}");
  }
  const std::string b = j.value("behavior", "Isolated");
  if (b == "Removed") step.behavior = Behavior::Removed;
  else if (b == "Isolated") step.behavior = Behavior::Isolated;
  else if (b == "MergedWithPrevious") step.behavior = Behavior::MergedWithPrevious;
  else if (b == "MergedWithNext") step.behavior = Behavior::MergedWithNext;
  else if (b == "Contiguous") step.behavior = Behavior::Contiguous;
  else throw Error("unsupported Split behavior '" + b + "'");
  step.invert = get_bool(j, "invert", false);
  return step;
}

PreTokenizer PreTokenizer::from_json(const nlohmann::json& j) {
  PreTokenizer p;
  p.json_ = j;
  bool saw_byte_level = false;
  if (j.is_object() && j.value("type", "") == "Sequence") {
    const auto& list = j.value("pretokenizers", nlohmann::json());
    if (!list.is_array()) throw Error("Sequence pre_tokenizer without a \"pretokenizers\" array");
    for (const auto& s : list) p.steps_.push_back(parse_step(s, saw_byte_level));
  } else if (j.is_object()) {
    p.steps_.push_back(parse_step(j, saw_byte_level));
  }
  if (!saw_byte_level) throw Error("byte-level BPE needs a ByteLevel pre_tokenizer (got " + j.dump() + ")");
  return p;
}

PreTokenizer PreTokenizer::split_then_byte_level(const std::string& pattern) {
  nlohmann::json j = {
      {"type", "Sequence"},
      {"pretokenizers",
       {{{"type", "Split"}, {"pattern", {{"Regex", pattern}}}, {"behavior", "Isolated"}, {"invert", false}},
        {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", false}}}}};
  return from_json(j);
}

void PreTokenizer::apply(const Step& step, Words& words) {
  std::vector<Word> out;
  out.reserve(words.list.size() * 2);
  for (const auto& w : words.list) {
    if (w.opaque) {
      out.push_back(w);
      continue;
    }
    std::string_view text = w.text;
    if (step.add_prefix_space && (text.empty() || text[0] != ' ')) {
      words.storage.push_back(" " + std::string(text));
      text = words.storage.back();
    }
    if (step.byte_level && !step.regex) {  // ByteLevel(use_regex=false): no split
      if (!text.empty()) out.push_back({text, false});
      continue;
    }
    // HF find_matches: alternating non-match / match spans covering the text.
    std::vector<std::pair<size_t, size_t>> found;
    if (step.regex) {
      found = step.regex->find_all(text);
    } else if (!step.literal.empty()) {
      for (size_t p = text.find(step.literal); p != std::string::npos; p = text.find(step.literal, p + step.literal.size()))
        found.emplace_back(p, p + step.literal.size());
    }
    struct Span {
      size_t b, e;
      bool match;
    };
    std::vector<Span> spans;
    size_t prev = 0;
    for (auto [b, e] : found) {
      if (b > prev) spans.push_back({prev, b, false});
      spans.push_back({b, e, true});
      prev = e;
    }
    if (prev < text.size()) spans.push_back({prev, text.size(), false});
    if (step.invert)
      for (auto& s : spans) s.match = !s.match;

    std::vector<std::pair<size_t, size_t>> pieces;
    bool previous_match = false;
    switch (step.behavior) {
      case Behavior::Removed:
        for (const auto& s : spans)
          if (!s.match) pieces.emplace_back(s.b, s.e);
        break;
      case Behavior::Isolated:
        for (const auto& s : spans) pieces.emplace_back(s.b, s.e);
        break;
      case Behavior::Contiguous:
        for (const auto& s : spans) {
          if (!pieces.empty() && s.match == previous_match) pieces.back().second = s.e;
          else pieces.emplace_back(s.b, s.e);
          previous_match = s.match;
        }
        break;
      case Behavior::MergedWithPrevious:
        for (const auto& s : spans) {
          if (s.match && !previous_match && !pieces.empty()) pieces.back().second = s.e;
          else pieces.emplace_back(s.b, s.e);
          previous_match = s.match;
        }
        break;
      case Behavior::MergedWithNext:
        for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
          if (it->match && !previous_match && !pieces.empty()) pieces.back().first = it->b;
          else pieces.emplace_back(it->b, it->e);
          previous_match = it->match;
        }
        std::reverse(pieces.begin(), pieces.end());
        break;
    }
    for (auto [b, e] : pieces)
      if (e > b) out.push_back({text.substr(b, e - b), false});
  }
  words.list = std::move(out);
}

Words PreTokenizer::split(std::string_view text) const {
  // Cut into valid-UTF-8 runs and (opaque) invalid runs first; see the header.
  Words words;
  size_t i = 0, run = 0;
  bool run_valid = true;
  while (i < text.size()) {
    const size_t n = utf8_char_len(text, i);
    const bool valid = n != 0;
    if (valid != run_valid && i > run) {
      words.list.push_back({text.substr(run, i - run), !run_valid});
      run = i;
    }
    run_valid = valid;
    i += valid ? n : 1;
  }
  if (i > run) words.list.push_back({text.substr(run, i - run), !run_valid});
  for (const auto& step : steps_) apply(step, words);
  return words;
}

}  // namespace grm::engine::bpe
