// Domain "help": chat-like two-part factual questions answered from a small built-in knowledge table, judged
// under a hidden multi-criteria rubric (accuracy, completeness, relevance, concision). Held out: disjoint
// entity lists (countries, elements).
#include <string>
#include <vector>

#include "synth/draft.h"

namespace grm::synth::detail {

namespace {

struct Fact {
  std::string entity, value;
};

struct Table {
  std::string ask;   // "capitals"
  std::string unit;  // "capital"
  std::vector<Fact> train, test;
  std::vector<std::string> chatter;  // off-topic remarks about the first entity ("{}" = entity)
};

const std::vector<Table> kTables = {
    {"capitals", "capital",
     {{"France", "Paris"}, {"Spain", "Madrid"}, {"Italy", "Rome"}, {"Germany", "Berlin"}, {"Japan", "Tokyo"},
      {"Egypt", "Cairo"}, {"Canada", "Ottawa"}, {"Peru", "Lima"}, {"Kenya", "Nairobi"}, {"Greece", "Athens"},
      {"Norway", "Oslo"}, {"Cuba", "Havana"}, {"Chile", "Santiago"}, {"Poland", "Warsaw"}, {"Iran", "Tehran"},
      {"Sweden", "Stockholm"}, {"Austria", "Vienna"}, {"Ireland", "Dublin"}, {"Ghana", "Accra"},
      {"Nepal", "Kathmandu"}},
     {{"Portugal", "Lisbon"}, {"Russia", "Moscow"}, {"China", "Beijing"}, {"Turkey", "Ankara"},
      {"Thailand", "Bangkok"}, {"Hungary", "Budapest"}, {"Finland", "Helsinki"}, {"Belgium", "Brussels"},
      {"Denmark", "Copenhagen"}, {"Vietnam", "Hanoi"}, {"Morocco", "Rabat"}, {"Colombia", "Bogota"}},
     {"{} has lovely food.", "{} is fun to visit in spring.", "Many people travel to {}."}},
    {"chemical symbols", "symbol",
     {{"gold", "Au"}, {"iron", "Fe"}, {"silver", "Ag"}, {"sodium", "Na"}, {"oxygen", "O"}, {"carbon", "C"},
      {"helium", "He"}, {"calcium", "Ca"}, {"sulfur", "S"}, {"neon", "Ne"}, {"lithium", "Li"},
      {"hydrogen", "H"}},
     {{"copper", "Cu"}, {"lead", "Pb"}, {"potassium", "K"}, {"mercury", "Hg"}, {"zinc", "Zn"},
      {"nitrogen", "N"}, {"tin", "Sn"}, {"argon", "Ar"}},
     {"{} is used in many things.", "{} was found long ago.", "Chemistry with {} is fun."}},
};

// Rubric dimensions: 0 accuracy, 1 completeness, 2 relevance, 3 concision.
std::vector<std::vector<std::string>> phrasings(const Table& t) {
  return {{"Factual accuracy", "Correct " + t.ask},
          {"Answers both parts", "Completeness"},
          {"Stays on topic", "Relevance"},
          {"Concise", "No filler"}};
}

const std::vector<std::string> kFiller = {"Great question! ", "Happy to help with that! ", "Let me think about it. "};

std::string fill_in(const std::string& pattern, const std::string& x) {
  std::string s = pattern;
  s.replace(s.find("{}"), 2, x);
  return s;
}

std::string cap(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

enum Flaw { Good, OneWrong, BothWrong, Partial, OffTopic, Padded, PartialWrong };

}  // namespace

Draft build_help(Rng& rng, bool test, int count, bool single) {
  const Table& t = pick(rng, kTables);
  const auto& facts = test ? t.test : t.train;
  const size_t i = rng.below(facts.size());
  size_t j = rng.below(facts.size() - 1);
  if (j >= i) ++j;
  const Fact& a = facts[i];
  const Fact& b = facts[j];
  Draft d;
  d.query = "What are the " + t.ask + " of " + a.entity + " and " + b.entity + "?";
  d.key = a.entity + "|" + b.entity;
  // 2-3 of the four dimensions, always at least one of accuracy / completeness.
  std::vector<int> dims = {0, 1, 2, 3};
  for (;;) {
    rng.shuffle(dims);
    if (dims[0] <= 1 || dims[1] <= 1) break;
  }
  dims.resize(static_cast<size_t>(crit_count(rng, count)));
  d.crits = draw_crits(rng, dims, phrasings(t), 10);

  // A value of the same table that is not the right one.
  auto wrong_value = [&](Rng& r, const Fact& not_this) {
    for (;;) {
      const Fact& f = pick(r, facts);
      if (f.value != not_this.value && f.value != a.value && f.value != b.value) return f.value;
    }
  };
  auto make = [&](Rng& r, Flaw flaw) {
    Cand c;
    const bool labeled = r.below(2);
    auto pair = [&](const std::string& x, const std::string& y) {
      return labeled ? cap(a.entity) + ": " + x + ". " + cap(b.entity) + ": " + y + "." : x + " and " + y + ".";
    };
    const std::string both = a.value + " and " + b.value;
    switch (flaw) {
      case Good:
        c.text = pair(a.value, b.value);
        c.analysis = both + ", both right";
        break;
      case OneWrong: {
        const bool first = r.below(2);
        const Fact& f = first ? a : b;
        const std::string w = wrong_value(r, f);
        c.text = first ? pair(w, b.value) : pair(a.value, w);
        c.analysis = w + " is wrong, " + f.entity + "'s " + t.unit + " is " + f.value;
        c.sub = {3, 10, 10, 10};
        break;
      }
      case BothWrong: {
        const std::string w1 = wrong_value(r, a), w2 = wrong_value(r, b);
        if (w1 == w2) return Cand{};
        c.text = pair(w1, w2);
        c.analysis = "both wrong, should be " + both;
        c.sub = {1, 10, 10, 10};
        break;
      }
      case Partial:
      case PartialWrong: {
        const bool first = r.below(2);
        const Fact& f = first ? a : b;
        const std::string v = flaw == Partial ? f.value : wrong_value(r, f);
        c.text = labeled ? cap(f.entity) + ": " + v + "." : "The " + t.unit + " of " + f.entity + " is " + v + ".";
        c.analysis = (flaw == Partial ? v + " right" : v + " wrong") + ", " + (first ? b : a).entity + " missing";
        c.sub = {flaw == Partial ? 10 : 2, 4, 10, 10};
        break;
      }
      case OffTopic:
        c.text = fill_in(pick(r, t.chatter), a.entity);
        c.analysis = "off topic, gives no " + t.unit;
        c.sub = {1, 1, 1, 10};
        break;
      case Padded:
        c.text = pick(r, kFiller) + pair(a.value, b.value);
        c.analysis = both + ", right but padded";
        c.sub = {10, 10, 10, 3};
        break;
    }
    c.ok = flaw == Good;
    return c;
  };
  d.cands.push_back(make(rng, Good));
  fill(rng, d, count, [&](Rng& r) {
    // Padding is a style flaw, not an incorrect answer: never the lone response of an n = 1 record.
    const Flaw f = static_cast<Flaw>(1 + r.below(single ? 5 : 6));
    return make(r, f == Padded && single ? PartialWrong : f);
  });
  return d;
}

std::string key_split_help(const std::string& part) {
  bool train = false, test = false;
  for (const auto& t : kTables) {
    for (const auto& f : t.train) train = train || f.entity == part;
    for (const auto& f : t.test) test = test || f.entity == part;
  }
  return train == test ? "" : train ? "train" : "test";
}

}  // namespace grm::synth::detail
