// Domain "arith": multi-digit +, -, x with near-miss wrong answers (carry slips, off by 1/10/100, swapped
// digits). Held out: the first operand's leading digit is 1-6 in train/dev and 7-9 in test.
// The record's working recomputes the result digit by digit from the least significant end, the way a
// small transformer can carry it out: every step is a one-digit fact seen in training whatever the operands.
#include <string>
#include <utility>
#include <vector>

#include "synth/draft.h"

namespace grm::synth::detail {

namespace {

// Rubric dimensions: 0 correct result (core), 1 shows the work, 2 concise, 3 clear final statement.
const std::vector<std::vector<std::string>> kPhrasings = {
    {"Correct result", "Arithmetic accuracy", "Right final number"},
    {"Shows the equation", "Shows the work"},
    {"Concise answer", "Brevity"},
    {"Clear final statement", "States the answer plainly"},
};

// Answer styles and their sub-scores on dims 1..3.
enum Style { Bare, Sentence, Work };
const char* kStyleTag[] = {"bare", "full sentence", "shows work"};
const int kStyleSub[3][3] = {{4, 10, 7}, {6, 8, 10}, {10, 8, 9}};

struct Problem {
  int a = 0, b = 0, c = 0;
  char op = '+';
};

std::string expr(const Problem& p, bool spaced) {
  const std::string sep = spaced ? " " : "";
  return std::to_string(p.a) + sep + p.op + sep + std::to_string(p.b);
}

int pow10(int k) {
  int v = 1;
  while (k-- > 0) v *= 10;
  return v;
}

// A dropped carry (or forgotten borrow) somewhere in the computation; 0 when there is none.
int carry_slip(const Problem& p) {
  if (p.op == '+') {
    int carry = 0;
    for (int k = 0; k < 4; ++k) {
      const int s = (p.a / pow10(k)) % 10 + (p.b / pow10(k)) % 10 + carry;
      carry = s >= 10;
      if (carry) return p.c - pow10(k + 1);
    }
  } else if (p.op == '-') {
    int borrow = 0;
    for (int k = 0; k < 4; ++k) {
      const int s = (p.a / pow10(k)) % 10 - (p.b / pow10(k)) % 10 - borrow;
      borrow = s < 0;
      if (borrow) return p.c + pow10(k + 1);
    }
  } else {
    const int ones = (p.a % 10) * p.b;
    if (ones >= 10) return p.c - (ones / 10) * 10;
  }
  return 0;
}

// c with two adjacent different digits swapped; 0 when all digits are equal.
int digit_swap(Rng& rng, int c) {
  std::string s = std::to_string(c);
  std::vector<size_t> at;
  for (size_t i = 0; i + 1 < s.size(); ++i)
    if (s[i] != s[i + 1] && !(i == 0 && s[1] == '0')) at.push_back(i);
  if (at.empty()) return 0;
  const size_t i = pick(rng, at);
  std::swap(s[i], s[i + 1]);
  return std::stoi(s);
}

int digit(int v, int k) { return (v / pow10(k)) % 10; }

int digits(int v) { return static_cast<int>(std::to_string(v).size()); }

// "7+0=7, 9+7=16, 3+2+1=6, so 397+270=667": column sums with the carry in; the last column is written whole.
// "13-7=6, 8-7=1, 3-2=1, so 397-270=127": each column's minuend after the borrow in (+10 when it borrows).
// "8*6=48, 7*6+4=46, so 78*6=468": the one-digit multiplier times each digit plus the carry in.
std::string working(const Problem& p) {
  std::string w;
  auto step = [&](const std::string& s) { w += (w.empty() ? "" : ", ") + s; };
  const int cols = digits(p.a);
  int carry = 0;
  for (int k = 0; k < cols; ++k) {
    const int x = digit(p.a, k), y = p.op == '*' ? p.b : digit(p.b, k);
    if (p.op == '+') {
      const int s = x + y + carry;
      step(std::to_string(x) + "+" + std::to_string(y) + (carry ? "+1" : "") + "=" + std::to_string(s));
      carry = s >= 10;
    } else if (p.op == '-') {
      int t = x - carry;
      carry = t < y;
      if (carry) t += 10;
      step(std::to_string(t) + "-" + std::to_string(y) + "=" + std::to_string(t - y));
    } else {
      const int s = x * y + carry;
      step(std::to_string(x) + "*" + std::to_string(y) + (carry ? "+" + std::to_string(carry) : "") + "=" +
           std::to_string(s));
      carry = s / 10;
    }
  }
  return w + ", so " + expr(p, false) + "=" + std::to_string(p.c);
}

std::string answer_text(const Problem& p, int value, Style style) {
  const std::string v = std::to_string(value);
  if (style == Bare) return v;
  if (style == Sentence) return "The answer is " + v + ".";
  return expr(p, true) + " = " + v;
}

Subs style_subs(int acc, Style style) {
  return {acc, kStyleSub[style][0], kStyleSub[style][1], kStyleSub[style][2]};
}

}  // namespace

Draft build_arith(Rng& rng, bool test, int count, bool /*single*/) {
  Problem p;
  const int kind = static_cast<int>(rng.below(3));
  if (kind == 0) {
    p.op = '+';
    p.a = test ? uniform_int(rng, 700, 999) : uniform_int(rng, 100, 699);
    p.b = uniform_int(rng, 100, 999);
    p.c = p.a + p.b;
  } else if (kind == 1) {
    p.op = '-';
    p.a = test ? uniform_int(rng, 700, 999) : uniform_int(rng, 100, 699);
    p.b = uniform_int(rng, 11, p.a - 11);
    p.c = p.a - p.b;
  } else {
    p.op = '*';
    p.a = test ? uniform_int(rng, 70, 99) : uniform_int(rng, 11, 69);
    p.b = uniform_int(rng, 3, 9);
    p.c = p.a * p.b;
  }
  Draft d;
  d.query = "What is " + expr(p, true) + "?";
  d.key = std::to_string(p.a);
  std::vector<int> dims = {0, 1, 2, 3};
  rng.shuffle(dims);
  std::erase(dims, 0);
  dims.resize(static_cast<size_t>(crit_count(rng, count) - 1));
  dims.insert(dims.begin(), 0);
  d.crits = draw_crits(rng, dims, kPhrasings, 60);

  d.working = working(p);
  const auto style = [&] { return static_cast<Style>(rng.below(3)); };
  const Style s0 = style();
  d.cands.push_back({answer_text(p, p.c, s0), "says " + std::to_string(p.c) + ", correct; " + kStyleTag[s0],
                     style_subs(10, s0), true});
  fill(rng, d, count, [&](Rng& r) {
    // Near misses, closer ones scored a little higher on correctness.
    const int e = static_cast<int>(r.below(5));
    int v = 0, acc = 2;
    std::string why;
    if (e == 0) v = p.c + (r.below(2) ? 1 : -1), acc = 4, why = "off by 1";
    if (e == 1) v = p.c + (r.below(2) ? 10 : -10), acc = 3, why = "off by 10";
    if (e == 2) v = p.c + (r.below(2) ? 100 : -100), acc = 2, why = "off by 100";
    if (e == 3) v = carry_slip(p), acc = 3, why = p.op == '-' ? "borrow slip" : "carry slip";
    if (e == 4) v = digit_swap(r, p.c), acc = 2, why = "digits swapped";
    if (v <= 0 || v == p.c) v = p.c + 1, acc = 4, why = "off by 1";
    const Style st = static_cast<Style>(r.below(3));
    return Cand{answer_text(p, v, st), "says " + std::to_string(v) + ", " + why + "; " + kStyleTag[st],
                style_subs(acc, st), false};
  });
  return d;
}

std::string key_split_arith(const std::string& part) {
  if (part.empty() || part.size() > 3 || part.find_first_not_of("0123456789") != std::string::npos) return "";
  if (part[0] == '0') return "";
  return part[0] <= '6' ? "train" : "test";
}

}  // namespace grm::synth::detail
