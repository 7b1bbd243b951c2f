// Domain "instruct": IFEval-like checkable constraints (exact word or item count, letter case, comma
// separation, ending with a question mark, words only from a given list) about a category; responses break
// some constraints. Held out: disjoint category lists. The query lists the allowed words, so staying on topic
// is checkable by lookup rather than world knowledge, and each analysis first copies the response's words
// numbered, so counting is reading off the last number.
#include <string>
#include <vector>

#include "synth/draft.h"

namespace grm::synth::detail {

namespace {

struct Category {
  std::string name;
  std::vector<std::string> items;  // single lowercase words
};

const std::vector<Category> kTrain = {
    {"fruits", {"apple", "pear", "plum", "grape", "mango", "peach", "lime", "fig"}},
    {"colors", {"red", "blue", "green", "pink", "gray", "brown", "white", "black"}},
    {"animals", {"horse", "tiger", "zebra", "camel", "sheep", "goat", "wolf", "bear"}},
    {"tools", {"saw", "drill", "wrench", "chisel", "pliers", "axe", "file", "clamp"}},
    {"sports", {"tennis", "golf", "rugby", "hockey", "boxing", "rowing", "soccer", "judo"}},
    {"vegetables", {"carrot", "onion", "potato", "pea", "leek", "bean", "kale", "corn"}},
    {"drinks", {"tea", "milk", "juice", "cocoa", "water", "soda", "cider", "lemonade"}},
    {"birds", {"robin", "eagle", "crow", "owl", "swan", "duck", "hawk", "finch"}},
    {"trees", {"oak", "pine", "elm", "maple", "birch", "cedar", "willow", "ash"}},
    {"furniture", {"chair", "table", "sofa", "bed", "desk", "shelf", "stool", "bench"}},
    {"weather", {"rain", "snow", "wind", "fog", "hail", "storm", "sleet", "sun"}},
    {"jobs", {"nurse", "pilot", "chef", "baker", "farmer", "judge", "miner", "tailor"}}};
const std::vector<Category> kTest = {
    {"flowers", {"rose", "tulip", "daisy", "lily", "orchid", "iris", "poppy", "lotus"}},
    {"metals", {"iron", "copper", "tin", "zinc", "nickel", "lead", "cobalt", "bronze"}},
    {"insects", {"ant", "bee", "moth", "wasp", "beetle", "flea", "gnat", "cricket"}},
    {"vehicles", {"bus", "truck", "van", "tram", "taxi", "scooter", "bicycle", "ferry"}},
    {"spices", {"cumin", "clove", "saffron", "anise", "cinnamon", "paprika", "mustard", "fennel"}}};

// Rubric dimensions: 0 count, 1 format (case, separator, end mark), 2 relevance.
enum Type { LowerWords, CommaItems, UpperWords, Question };

std::vector<std::vector<std::string>> phrasings(Type t, int n, const std::string& cat) {
  const std::string ns = std::to_string(n);
  std::vector<std::string> count = {"Exactly " + ns + " words", "Word count of " + ns};
  if (t == CommaItems) count = {"Exactly " + ns + " items", "Item count of " + ns};
  if (t == Question) count = {"One sentence only", "Single question"};
  std::vector<std::string> format = {"All lowercase", "No capital letters"};
  if (t == CommaItems) format = {"Comma separated", "Uses commas"};
  if (t == UpperWords) format = {"All uppercase", "Capital letters only"};
  if (t == Question) format = {"Ends with a question mark", "Question mark at the end"};
  return {count, format, {"About " + cat, "On topic"}};
}

std::string cap(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

std::string upper(std::string s) {
  for (char& ch : s)
    if (ch >= 'a' && ch <= 'z') ch = static_cast<char>(ch - 'a' + 'A');
  return s;
}

}  // namespace

Draft build_instruct(Rng& rng, bool test, int count, bool /*single*/) {
  const auto& cats = test ? kTest : kTrain;
  const size_t ci = rng.below(cats.size());
  const Category& cat = cats[ci];
  const Type type = static_cast<Type>(rng.below(4));
  const int n = type == Question ? 1 : 3 + static_cast<int>(rng.below(2));
  Draft d;
  const std::string ns = std::to_string(n);
  if (type == LowerWords) d.query = "Write exactly " + ns + " words about " + cat.name + ", all lowercase.";
  if (type == CommaItems) d.query = "List exactly " + ns + " " + cat.name + ", separated by commas.";
  if (type == UpperWords) d.query = "Write exactly " + ns + " words about " + cat.name + ", all uppercase.";
  if (type == Question) d.query = "Ask one short question about " + cat.name + ". End with a question mark.";
  std::string allowed;
  for (const auto& w : cat.items) allowed += (allowed.empty() ? "" : ", ") + w;
  d.query += " Use only: " + allowed + ".";
  d.key = cat.name;
  std::vector<int> dims = {0, 1, 2};
  rng.shuffle(dims);
  dims.resize(static_cast<size_t>(crit_count(rng, count)));
  d.crits = draw_crits(rng, dims, phrasings(type, n, cat.name), 10);

  // A response: `m` words (or sentences), `fmt_ok` format, `off` = drawn from another category.
  auto make = [&](Rng& r, int m, bool fmt_ok, bool off) {
    const Category& src = off ? cats[(ci + 1 + r.below(cats.size() - 1)) % cats.size()] : cat;
    std::vector<std::string> items = src.items;
    r.shuffle(items);
    Cand c;
    if (type == Question) {
      const std::string q = pick(r, std::vector<std::string>{"Do you like the ", "Where does the ", "Is the "});
      const std::string tail = q[0] == 'W' ? " come from" : q[0] == 'I' ? " easy to find" : "";
      const std::string end = fmt_ok ? "?" : ".";
      c.text = q + items[0] + tail + end;
      if (m == 2) c.text = "I like the " + items[1] + ". " + c.text;
      const std::string sentences = m == 2 ? "two sentences" : "one sentence";
      c.analysis = sentences + ", ends with " + (fmt_ok ? "?" : "a period") + ", asks about " + items[0] +
                   (off ? ", not in the list" : ", in the list");
    } else {
      std::vector<std::string> words(items.begin(), items.begin() + m);
      int flawed = 0;
      std::string flaw_word;
      for (size_t i = 0; i < words.size(); ++i) {
        std::string& w = words[i];
        if (type == UpperWords) w = upper(w);
        if (!fmt_ok && (i == 0 || r.below(2)) && type != CommaItems) {
          w = type == UpperWords ? items[i] : cap(w);
          if (!flawed++) flaw_word = w;
        }
      }
      const std::string sep = type != CommaItems ? " " : fmt_ok ? ", " : r.below(2) ? " and " : "; ";
      for (const auto& w : words) c.text += (c.text.empty() ? "" : sep) + w;
      const std::string unit = type == CommaItems ? " items" : " words";
      for (size_t i = 0; i < words.size(); ++i) c.analysis += (i ? " " : "") + std::to_string(i + 1) + " " + words[i];
      c.analysis += ", so " + std::to_string(m) + unit + (m == n ? "" : ", not " + ns) + ", ";
      if (type == CommaItems) c.analysis += fmt_ok ? "commas" : "no commas";
      else if (fmt_ok) c.analysis += type == UpperWords ? "all uppercase" : "all lowercase";
      else c.analysis += flaw_word + (type == UpperWords ? " is lowercase" : " is capitalized");
      c.analysis += off ? ", " + words[0] + " not in the list" : ", all in the list";
    }
    c.sub = {m == n ? 10 : 2, fmt_ok ? 10 : 3, off ? 2 : 10, 10};
    c.ok = m == n && fmt_ok && !off;
    return c;
  };
  d.cands.push_back(make(rng, n, true, false));
  fill(rng, d, count, [&](Rng& r) {
    // Break one or two of the drawn dimensions.
    bool broke[3] = {false, false, false};
    const int first = d.crits[r.below(d.crits.size())].dim;
    broke[first] = true;
    if (r.below(4) == 0) broke[d.crits[r.below(d.crits.size())].dim] = true;
    int m = n;
    if (broke[0]) m = type == Question ? 2 : (r.below(2) ? n + 1 : n - 1);
    return make(r, m, !broke[1], broke[2]);
  });
  return d;
}

std::string key_split_instruct(const std::string& part) {
  for (const auto& c : kTrain)
    if (c.name == part) return "train";
  for (const auto& c : kTest)
    if (c.name == part) return "test";
  return "";
}

}  // namespace grm::synth::detail
