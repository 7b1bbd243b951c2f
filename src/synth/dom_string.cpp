// Domain "string": code-like manipulation of a short word or a few numbers (reverse, count a letter, sort,
// uppercase, last letter, length) with near-miss wrong answers. Held out: disjoint word lists, and sort
// numbers from 1-59 in train/dev, 60-99 in test.
// The record's working spells the word letter by letter before it reverses, counts or uppercases it: a byte-
// level BPE sees a held-out word as a few opaque pieces, while single letters are the same in every split.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "synth/draft.h"

namespace grm::synth::detail {

namespace {

const std::vector<std::string> kTrainWords = {
    "apple",  "bridge", "candle", "dragon", "engine", "forest", "garden", "harbor", "island", "jacket",
    "kettle", "lemon",  "mirror", "napkin", "orange", "pencil", "planet", "rabbit", "silver", "tunnel",
    "violin", "window", "yellow", "zipper", "basket", "button", "castle", "cherry", "doctor", "falcon",
    "ginger", "hammer", "insect", "jungle", "kitten", "ladder", "magnet", "needle", "pepper", "pillow",
    "rocket", "saddle", "ticket", "velvet", "wallet", "anchor", "bottle", "carpet", "dinner", "guitar",
    "helmet", "marble", "number", "parrot", "puzzle", "river",  "summer", "tomato", "banana", "coffee"};
const std::vector<std::string> kTestWords = {
    "beacon", "cactus", "dolphin", "ferret", "glacier", "hornet", "iguana", "lobster", "meadow", "nutmeg",
    "oyster", "pebble", "quiver", "radish", "sparrow", "thimble", "walrus", "yogurt", "zephyr", "biscuit",
    "crayon", "donkey", "goblet", "muffin"};

// Rubric dimensions: 0 correct answer (core), 1 concise, 2 clear final statement.
const std::vector<std::vector<std::string>> kPhrasings = {
    {"Correct answer", "Exact result", "Accuracy"},
    {"Concise answer", "No extra words"},
    {"Clear final statement", "States the answer plainly"},
};

struct Wrong {
  std::string value;
  int acc;
  std::string why;
};

struct Task {
  std::string query, key, answer, fact;  // fact: the record's working ("planet is p l a n e t, reversed ...")
  std::vector<Wrong> wrongs;             // candidate near misses (filtered: non-empty, != answer)
};

std::string reversed(std::string s) {
  std::reverse(s.begin(), s.end());
  return s;
}

std::string upper(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  return s;
}

std::string swap_adjacent(Rng& rng, std::string s) {
  std::vector<size_t> at;
  for (size_t i = 0; i + 1 < s.size(); ++i)
    if (s[i] != s[i + 1]) at.push_back(i);
  if (!at.empty()) {
    const size_t i = pick(rng, at);
    std::swap(s[i], s[i + 1]);
  }
  return s;
}

std::string spelled(const std::string& w) {
  std::string out;
  for (char ch : w) out += (out.empty() ? "" : " ") + std::string(1, ch);
  return out;
}

// "d1 o2 l3 p4 h5 i6 n7": every letter with its position, so the last number is the length.
std::string numbered(const std::string& w) {
  std::string out;
  for (size_t i = 0; i < w.size(); ++i) out += (i ? " " : "") + std::string(1, w[i]) + std::to_string(i + 1);
  return out;
}

// "b a1 n a2 n a3": the letters, each occurrence of `l` numbered, so the last number is the count.
std::string occurrences(const std::string& w, char l) {
  std::string out;
  int n = 0;
  for (char ch : w) out += (out.empty() ? "" : " ") + std::string(1, ch) + (ch == l ? std::to_string(++n) : "");
  return out;
}

std::string join(const std::vector<int>& v) {
  std::string out;
  for (int x : v) out += (out.empty() ? "" : ", ") + std::to_string(x);
  return out;
}

Task make_task(Rng& rng, bool test) {
  const std::string w = pick(rng, pool(test, kTrainWords, kTestWords));
  const std::string q = "'" + w + "'";
  Task t;
  t.key = w;
  switch (rng.below(6)) {
    case 0: {
      t.query = "Reverse the word " + q + ".";
      t.answer = reversed(w);
      t.fact = w + " is " + spelled(w) + ", reversed " + spelled(t.answer) + ", so " + t.answer;
      t.wrongs = {{swap_adjacent(rng, t.answer), 3, "two letters swapped"},
                  {t.answer.substr(0, t.answer.size() - 1), 3, "a letter dropped"},
                  {w, 1, "not reversed"},
                  {w.substr(0, 1) + reversed(w.substr(1)), 2, "first letter kept"}};
      break;
    }
    case 1: {
      const char l = w[rng.below(w.size())];
      const int n = static_cast<int>(std::count(w.begin(), w.end(), l));
      t.query = "How many times does the letter '" + std::string(1, l) + "' appear in " + q + "?";
      t.answer = std::to_string(n);
      t.fact = w + " is " + occurrences(w, l) + ", so " + t.answer + " " + std::string(1, l);
      t.wrongs = {{std::to_string(n + 1), 3, "one too many"},
                  {std::to_string(n - 1), 3, "one too few"},
                  {std::to_string(n + 2), 2, "two too many"}};
      break;
    }
    case 2: {
      std::vector<int> v;
      const int m = 3 + static_cast<int>(rng.below(2));
      while (static_cast<int>(v.size()) < m) {
        const int x = test ? uniform_int(rng, 60, 99) : uniform_int(rng, 1, 59);
        if (std::find(v.begin(), v.end(), x) == v.end()) v.push_back(x);
      }
      if (std::is_sorted(v.begin(), v.end())) std::swap(v[0], v[1]);
      t.query = "Sort " + join(v) + " in ascending order.";
      t.key.clear();
      for (int x : v) t.key += (t.key.empty() ? "" : "|") + std::to_string(x);
      std::vector<int> s = v;
      std::sort(s.begin(), s.end());
      t.answer = join(s);
      t.fact = "sorted is " + t.answer;
      std::vector<int> sw = s, desc = s, drop = s;
      const size_t i = rng.below(s.size() - 1);
      std::swap(sw[i], sw[i + 1]);
      std::reverse(desc.begin(), desc.end());
      drop.erase(drop.begin() + static_cast<long>(rng.below(drop.size())));
      t.wrongs = {{join(sw), 3, "two out of order"}, {join(desc), 2, "descending"}, {join(drop), 2, "a number lost"}};
      break;
    }
    case 3: {
      t.query = "Write " + q + " in uppercase.";
      t.answer = upper(w);
      t.fact = w + " is " + spelled(w) + ", uppercase " + spelled(t.answer) + ", so " + t.answer;
      std::string one = t.answer;
      const size_t i = 1 + rng.below(w.size() - 1);
      one[i] = w[i];
      t.wrongs = {{one, 3, "one letter lowercase"},
                  {t.answer.substr(0, 1) + w.substr(1), 2, "only first letter"},
                  {w, 1, "unchanged"}};
      break;
    }
    case 4: {
      t.query = "What is the last letter of " + q + "?";
      t.answer = w.substr(w.size() - 1);
      t.fact = w + " is " + spelled(w) + ", ends in " + t.answer;
      t.wrongs = {{w.substr(w.size() - 2, 1), 3, "second to last"}, {w.substr(0, 1), 2, "first letter"}};
      break;
    }
    default: {
      const int n = static_cast<int>(w.size());
      t.query = "How many letters are in " + q + "?";
      t.answer = std::to_string(n);
      t.fact = w + " is " + numbered(w) + ", so " + t.answer + " letters";
      t.wrongs = {{std::to_string(n + 1), 3, "one too many"},
                  {std::to_string(n - 1), 3, "one too few"},
                  {std::to_string(n - 2), 2, "two too few"}};
    }
  }
  std::erase_if(t.wrongs, [&](const Wrong& x) { return x.value.empty() || x.value == t.answer || x.value == "-1"; });
  return t;
}

std::string styled(const std::string& value, bool sentence) {
  return sentence ? "The answer is " + value + "." : value;
}

Subs style_subs(int acc, bool sentence) { return sentence ? Subs{acc, 7, 10, 10} : Subs{acc, 10, 7, 10}; }

}  // namespace

Draft build_string(Rng& rng, bool test, int count, bool /*single*/) {
  Task t = make_task(rng, test);
  Draft d;
  d.query = t.query;
  d.key = t.key;
  std::vector<int> dims = {0, 1, 2};
  if (crit_count(rng, count) == 2) dims = {0, 1 + static_cast<int>(rng.below(2))};
  d.crits = draw_crits(rng, dims, kPhrasings, 60);
  const bool s0 = rng.below(2);
  d.working = t.fact;
  d.cands.push_back({styled(t.answer, s0), "says " + t.answer + ", correct", style_subs(10, s0), true});
  if (t.wrongs.empty()) return d;
  fill(rng, d, count, [&](Rng& r) {
    const Wrong& x = pick(r, t.wrongs);
    const bool s = r.below(2);
    return Cand{styled(x.value, s), "says " + x.value + ", " + x.why, style_subs(x.acc, s), false};
  });
  return d;
}

std::string key_split_string(const std::string& part) {
  if (!part.empty() && part.find_first_not_of("0123456789") == std::string::npos && part.size() <= 2) {
    const int x = std::stoi(part);
    if (x >= 1 && x <= 59) return "train";
    if (x >= 60 && x <= 99) return "test";
    return "";
  }
  return pool_split(part, kTrainWords, kTestWords);
}

}  // namespace grm::synth::detail
