// Hand-written, single-pass scanners for the judge's output (see parse.h for the accepted format).
// Every loop below either advances through the input once or walks a run of characters that belongs to
// exactly one match, so the whole parse is linear in the input length whatever the bytes.
#include "core/parse.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace grm {
namespace {

using sv = std::string_view;
constexpr size_t npos = sv::npos;
constexpr sv kFullComma = "\xEF\xBC\x8C";      // U+FF0C '，'
constexpr sv kFullSemicolon = "\xEF\xBC\x9B";  // U+FF1B '；'
constexpr sv kFullColon = "\xEF\xBC\x9A";      // U+FF1A '：'
constexpr sv kFullPercent = "\xEF\xBC\x85";    // U+FF05 '％'

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v'; }
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }
// Inline emphasis and horizontal space around a header word: "**Scores**:", "__Analysis:__".
bool is_emphasis(char c) { return c == '*' || c == '_' || c == ' ' || c == '\t'; }
// What may precede a header on its line: emphasis, heading hashes, block quotes.
bool is_line_prefix(char c) { return is_emphasis(c) || c == '#' || c == '>'; }
bool at(sv s, size_t i, sv what) { return i <= s.size() && s.substr(i, what.size()) == what; }

sv trim(sv s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

bool starts_ci(sv s, size_t i, sv kw) {  // kw is lower case
  if (i > s.size() || s.size() - i < kw.size()) return false;
  for (size_t k = 0; k < kw.size(); ++k)
    if (lower(s[i + k]) != kw[k]) return false;
  return true;
}

// First case-insensitive occurrence of the short, lower-case `kw` (starting with a letter) at or after `from`.
size_t find_ci(sv s, sv kw, size_t from) {
  const char a = kw[0], b = static_cast<char>(a - 'a' + 'A');
  for (size_t i = from; i < s.size(); ++i)
    if ((s[i] == a || s[i] == b) && starts_ci(s, i, kw)) return i;
  return npos;
}

// A section header: [begin, end) covers the header from its markup prefix through the colon and any
// emphasis after it, so `end` is where the section's text starts and `begin` where the previous one ends.
struct Mark {
  size_t begin = npos, end = npos;
  explicit operator bool() const { return begin != npos; }
};

// Finds header `kw` within [from, to): the word (an optional plural 's', not inside a longer word), then
// emphasis, then ':' or '：'. A header that starts its line (after #, >, * or _) may also omit the colon
// when nothing follows it on the line ("### Analysis"). Line-starting headers are preferred; among the
// preferred kind the first (or, with `last`, the last) one is returned.
Mark find_header(sv text, sv kw, size_t from, size_t to, bool last) {
  Mark first_line, last_line, first_any, last_any;
  const sv hay = text.substr(0, to);
  for (size_t p = find_ci(hay, kw, from); p != npos; p = find_ci(hay, kw, p + 1)) {
    if (p > 0 && is_alpha(text[p - 1])) continue;
    size_t q = p + kw.size();
    if (q < to && lower(text[q]) == 's') ++q;
    if (q < to && is_alpha(text[q])) continue;
    size_t b = p;
    while (b > 0 && is_line_prefix(text[b - 1])) --b;
    const bool line_start = b == 0 || text[b - 1] == '\n';
    size_t e = q;
    while (e < to && is_emphasis(text[e])) ++e;
    if (e < to && text[e] == ':') {
      ++e;
    } else if (at(text, e, kFullColon) && e + kFullColon.size() <= to) {
      e += kFullColon.size();
    } else if (!(line_start && (e == to || text[e] == '\n' || text[e] == '\r'))) {
      continue;
    }
    while (e < to && is_emphasis(text[e])) ++e;
    const Mark m{std::max(b, from), e};
    if (line_start) {
      if (!first_line) first_line = m;
      last_line = m;
    }
    if (!first_any) first_any = m;
    last_any = m;
  }
  if (last) return last_line ? last_line : last_any;
  return first_line ? first_line : first_any;
}

// ---- weights --------------------------------------------------------------------------------------

struct Weight { double value; size_t length; };  // length: bytes of the spec consumed

// Parses a weight spec at the start of `s`: ["weight" [:|=]] number ["%"] ["weight"], with either the
// word or a percent sign present. A percentage (or a bare number above 1) is divided by 100. With `whole`
// the spec must fill `s` (a parenthesized group); the result must lie in [0, 1].
std::optional<Weight> parse_weight(sv s, bool whole) {
  size_t i = 0;
  auto skip_space = [&] { while (i < s.size() && is_space(s[i])) ++i; };
  skip_space();
  bool keyword = false, percent = false;
  if (starts_ci(s, i, "weight")) {
    keyword = true;
    i += 6;
    skip_space();
    if (i < s.size() && (s[i] == ':' || s[i] == '=')) ++i;
    skip_space();
  }
  double value = 0, scale = 1;
  bool digits = false, fraction = false;
  for (; i < s.size(); ++i) {
    if (is_digit(s[i])) {
      digits = true;
      if (fraction) value += (s[i] - '0') * (scale /= 10);
      else value = std::min(value * 10 + (s[i] - '0'), 1e9);
    } else if (s[i] == '.' && !fraction) {
      fraction = true;
    } else {
      break;
    }
  }
  if (!digits) return std::nullopt;
  size_t length = i;
  skip_space();
  if (i < s.size() && s[i] == '%') percent = true, i += 1;
  else if (at(s, i, kFullPercent)) percent = true, i += kFullPercent.size();
  if (percent) length = i;
  skip_space();
  if (!keyword && starts_ci(s, i, "weight")) keyword = true, i += 6, length = i;
  if (!keyword && !percent) return std::nullopt;
  if (whole && !trim(s.substr(length)).empty()) return std::nullopt;
  const double w = (percent || value > 1) ? value / 100 : value;
  if (w < 0 || w > 1) return std::nullopt;
  return Weight{w, length};
}

// The principle text: both sides of the weight, "**" removed, whitespace collapsed, no space before
// punctuation, separators trimmed from the ends.
std::string clean_text(sv before, sv after) {
  std::string raw;
  raw.reserve(before.size() + after.size() + 1);
  raw.append(before).append(" ").append(after);
  std::string out;
  bool space = false;
  for (size_t i = 0; i < raw.size(); ++i) {
    const char c = raw[i];
    if (c == '*' && i + 1 < raw.size() && raw[i + 1] == '*') { ++i; continue; }
    if (is_space(c)) { space = true; continue; }
    if (space && !out.empty() && sv(":,;.)").find(c) == npos) out += ' ';
    space = false;
    out += c;
  }
  const sv trail = " :;,-.", lead = " :;,-";
  const size_t b = out.find_first_not_of(lead), e = out.find_last_not_of(trail);
  if (b == npos || e == npos || e < b) return {};
  return out.substr(b, e + 1 - b);
}

// One principle item: a parenthesized weight "(Weight: 40%)" wins; otherwise a bare "Weight: 0.4".
Principle make_principle(sv item) {
  Principle p;
  size_t open = npos;
  for (size_t i = 0; i < item.size(); ++i) {
    if (item[i] == '(') {
      open = i;
    } else if (item[i] == ')' && open != npos) {
      if (auto w = parse_weight(item.substr(open + 1, i - open - 1), true)) {
        p.weight = w->value;
        p.text = clean_text(item.substr(0, open), item.substr(i + 1));
        return p;
      }
      open = npos;
    }
  }
  for (size_t k = find_ci(item, "weight", 0); k != npos; k = find_ci(item, "weight", k + 1)) {
    if (k > 0 && is_alpha(item[k - 1])) continue;
    if (auto w = parse_weight(item.substr(k), false)) {
      p.weight = w->value;
      sv before = item.substr(0, k);
      while (!before.empty() && (before.back() == '(' || before.back() == '[')) before.remove_suffix(1);
      p.text = clean_text(before, item.substr(k + w->length));
      return p;
    }
  }
  p.text = clean_text(item, {});
  return p;
}

// ---- principle items ------------------------------------------------------------------------------

// Length of a list marker ("- ", "* ", "+ ", "• ", "1. ", "12) ") at the start of `s`, 0 if none.
size_t marker_length(sv s) {
  size_t i = 0;
  if (!s.empty() && (s[0] == '-' || s[0] == '*' || s[0] == '+')) {
    i = 1;
  } else if (at(s, 0, "\xE2\x80\xA2")) {  // U+2022 '•'
    i = 3;
  } else {
    while (i < s.size() && i < 3 && is_digit(s[i])) ++i;
    if (i == 0 || i >= s.size() || (s[i] != '.' && s[i] != ')')) return 0;
    ++i;
  }
  return i == s.size() || is_space(s[i]) ? i : 0;
}

// Removes a list marker from a trimmed line.
bool strip_marker(sv& s) {
  const size_t n = marker_length(s);
  if (n > 0) s = trim(s.substr(n));
  return n > 0;
}

// Width of a separator at s[i]: ';' / '；' always; ',' / '，' only when `comma`.
size_t separator(sv s, size_t i, bool comma) {
  if (s[i] == ';') return 1;
  if (at(s, i, kFullSemicolon)) return kFullSemicolon.size();
  if (!comma) return 0;
  if (s[i] == ',') return 1;
  return at(s, i, kFullComma) ? kFullComma.size() : 0;
}

// A one-line list: "A (Weight: 40%), B (Weight: 60%)", "1. A (40%) 2. B (60%)" or "A; B". Commas and
// numbers split only right after a parenthesized weight, so "facts, dates and names (40%)" stays one item.
std::vector<std::string> split_line(sv s) {
  std::vector<std::string> items;
  size_t start = 0, depth = 0, group = 0;
  bool after_weight = false;  // only spaces since a closing weight group
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '(') {
      if (depth++ == 0) group = i;
      after_weight = false;
    } else if (c == ')' && depth > 0) {
      after_weight = --depth == 0 && parse_weight(s.substr(group + 1, i - group - 1), true).has_value();
    } else if (after_weight && is_digit(c) && marker_length(s.substr(i, 5)) > 0) {
      items.emplace_back(s.substr(start, i - start));
      start = i;
      after_weight = false;
    } else if (size_t w = depth == 0 ? separator(s, i, after_weight) : 0) {
      if (!trim(s.substr(start, i - start)).empty()) items.emplace_back(s.substr(start, i - start));
      start = i + w;
      i += w - 1;
      after_weight = false;
    } else if (!is_space(c)) {
      after_weight = false;
    }
  }
  items.emplace_back(s.substr(start));
  return items;
}

// Splits the "Specific Criteria" section into principles. One non-blank line: split_line(). Several:
// if some lines carry list markers, each marker line at the outermost indentation starts an item and
// the other lines continue it (lines before the first item are a preamble and dropped); otherwise each
// line is an item.
std::vector<Principle> parse_principles(sv section) {
  struct Line { sv text; size_t indent; bool marker; };
  std::vector<Line> lines;
  size_t min_indent = npos;
  while (!section.empty()) {
    const size_t nl = section.find('\n');
    const sv raw = section.substr(0, nl);
    section.remove_prefix(nl == npos ? section.size() : nl + 1);
    sv text = trim(raw);
    if (text.find_first_not_of("*_-#=>` \t") == npos) continue;  // blank or a rule like "---"
    const size_t indent = raw.find_first_not_of(" \t");
    const bool marker = strip_marker(text);
    if (marker) min_indent = std::min(min_indent, indent);
    lines.push_back({text, indent, marker});
  }
  std::vector<std::string> items;
  if (lines.size() == 1) {
    items = split_line(lines[0].text);
  } else {
    for (const Line& l : lines) {
      if (min_indent == npos || (l.marker && l.indent <= min_indent)) {
        items.emplace_back(l.text);
      } else if (!items.empty()) {
        items.back().append(" ").append(l.text);
      }
    }
  }
  std::vector<Principle> out;
  for (const std::string& item : items) {
    sv text = trim(item);
    strip_marker(text);
    Principle p = make_principle(text);
    if (!p.text.empty()) out.push_back(std::move(p));
  }
  return out;
}

// ---- scores ---------------------------------------------------------------------------------------

constexpr long long kSaturate = 1'000'000'000'000LL;

// Optional sign and ASCII digits only; huge values saturate (they are out of range anyway).
bool parse_int(sv t, long long& v) {
  size_t i = 0;
  const bool neg = !t.empty() && t[0] == '-';
  if (!t.empty() && (t[0] == '-' || t[0] == '+')) i = 1;
  if (i == t.size()) return false;
  v = 0;
  for (; i < t.size(); ++i) {
    if (!is_digit(t[i])) return false;
    v = std::min(v * 10 + (t[i] - '0'), kSaturate);
  }
  if (neg) v = -v;
  return true;
}

std::string shorten(sv s) { return s.size() <= 40 ? std::string(s) : std::string(s.substr(0, 40)) + "..."; }

}  // namespace

Judgment parse_judgment(std::string_view text, int n_responses, ScoreRange range) {
  Judgment j;
  if (trim(text).empty()) {
    j.error = "empty output";
    return j;
  }
  // The scores: the last complete \boxed{...} after the last Scores header (anywhere when there is none).
  const Mark scores = find_header(text, "score", 0, text.size(), true);
  const size_t from = scores ? scores.end : 0;
  size_t box = npos;
  const size_t last_close = text.rfind('}');
  if (last_close != npos && last_close >= from) {
    box = text.substr(0, last_close).rfind("\\boxed{");
    if (box != npos && box < from) box = npos;
  }
  // The sections end where the Scores header (or, without one, the box) begins.
  size_t limit = text.size();
  if (scores) {
    limit = scores.begin;
  } else if (box != npos) {
    limit = box;
    while (limit > 0 && is_line_prefix(text[limit - 1])) --limit;
  }
  Mark crit = find_header(text, "specific criteria", 0, limit, false);
  if (!crit) crit = find_header(text, "criteria", 0, limit, false);
  const Mark analysis = find_header(text, "analysis", crit ? crit.end : 0, limit, false);
  if (crit) j.principles = parse_principles(text.substr(crit.end, (analysis ? analysis.begin : limit) - crit.end));
  if (analysis) j.critique = std::string(trim(text.substr(analysis.end, limit - analysis.end)));

  if (box == npos) {
    j.error = "no boxed scores";
    return j;
  }
  const size_t open = box + 7;
  const sv content = text.substr(open, text.find('}', open) - open);
  std::vector<sv> tokens;
  if (!trim(content).empty()) {
    size_t start = 0;
    for (size_t i = 0; i < content.size(); ++i) {
      const size_t w = content[i] == ',' ? 1 : at(content, i, kFullComma) ? kFullComma.size() : 0;
      if (w == 0) continue;
      tokens.push_back(trim(content.substr(start, i - start)));
      start = i + w;
      i += w - 1;
    }
    tokens.push_back(trim(content.substr(start)));
  }
  if (tokens.size() != static_cast<size_t>(std::max(n_responses, 0))) {
    j.error = "wrong count: expected " + std::to_string(n_responses) + ", got " + std::to_string(tokens.size());
    return j;
  }
  std::vector<int> values;
  for (const sv t : tokens) {
    long long v = 0;
    if (!parse_int(t, v)) {
      j.error = "non-integer score '" + shorten(t) + "'";
      return j;
    }
    if (v < range.lo || v > range.hi) {
      j.error = "score " + (v == kSaturate || v == -kSaturate ? shorten(t) : std::to_string(v)) +
                " out of range [" + std::to_string(range.lo) + ", " + std::to_string(range.hi) + "]";
      return j;
    }
    values.push_back(static_cast<int>(v));
  }
  j.scores = std::move(values);
  j.valid = true;
  return j;
}

}  // namespace grm
