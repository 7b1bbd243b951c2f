#include "synth/synth.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/jsonl.h"
#include "core/parse.h"
#include "core/rng.h"
#include "core/template.h"

namespace grm::synth {
namespace {

const std::vector<SynthRecord>& suite(Split split) {
  static std::map<Split, std::vector<SynthRecord>> cache;
  auto it = cache.find(split);
  if (it == cache.end()) it = cache.emplace(split, generate_suite(split, 6000, 11)).first;
  return it->second;
}

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (;;) {
    const size_t bar = key.find('|', start);
    parts.push_back(key.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
    if (bar == std::string::npos) return parts;
    start = bar + 1;
  }
}

TEST(SynthSuite, DeterministicBySeed) {
  const auto a = generate_suite(Split::Train, 300, 5);
  const auto b = generate_suite(Split::Train, 300, 5);
  const auto c = generate_suite(Split::Train, 300, 6);
  const auto prefix = generate_suite(Split::Train, 100, 5);
  int differ = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(to_json(a[i]), to_json(b[i]));
    differ += to_json(a[i])["query"] != to_json(c[i])["query"];
    if (i < prefix.size()) {
      EXPECT_EQ(to_json(a[i]), to_json(prefix[i]));
    }
  }
  EXPECT_GT(differ, 200);
  EXPECT_EQ(to_json(generate_record(Split::Train, 5, 42)), to_json(a[42]));
}

TEST(SynthSuite, EveryRecordIsValid) {
  for (Split split : {Split::Train, Split::Dev, Split::Test}) {
    for (const auto& r : suite(split)) {
      SCOPED_TRACE(r.id);
      ASSERT_GE(r.n(), 1);
      ASSERT_LE(r.n(), 4);
      ASSERT_EQ(r.scores.size(), r.responses.size());
      ASSERT_EQ(r.analyses.size(), r.responses.size());
      std::set<std::string> distinct(r.responses.begin(), r.responses.end());
      EXPECT_EQ(distinct.size(), r.responses.size());
      for (size_t i = 0; i < r.responses.size(); ++i) {
        EXPECT_FALSE(r.responses[i].empty());
        EXPECT_FALSE(r.analyses[i].empty());
        EXPECT_NE(r.analyses[i].back(), '.');
        EXPECT_EQ(r.analyses[i].find("Response"), std::string::npos);
      }
      if (r.n() == 1) {
        EXPECT_EQ(r.tmpl, "single-binary");
        EXPECT_EQ(r.best, -1);
        ASSERT_TRUE(r.label == 0 || r.label == 1);
        EXPECT_EQ(r.scores[0], r.label);
      } else {
        EXPECT_EQ(r.tmpl, "compact");
        EXPECT_EQ(r.label, -1);
        ASSERT_GE(r.best, 0);
        ASSERT_LT(r.best, r.n());
        for (int i = 0; i < r.n(); ++i) {
          EXPECT_TRUE(r.range().contains(r.scores[i]));
          if (i != r.best) {
            EXPECT_LT(r.scores[i], r.scores[r.best]);
          }
        }
      }
      double sum = 0;
      ASSERT_GE(r.principles.size(), 2u);
      for (const auto& p : r.principles) {
        ASSERT_TRUE(p.weight.has_value());
        EXPECT_GE(*p.weight, 0.1 - 1e-9);
        EXPECT_NEAR(*p.weight * 10, std::round(*p.weight * 10), 1e-9);
        sum += *p.weight;
      }
      EXPECT_NEAR(sum, 1.0, 1e-9);
      EXPECT_EQ(r.target, gold_target(r, make_schedule(ScheduleKind::Identity, r.n(), 1, 0)[0]));
      // JSON round trip.
      const SynthRecord back = synth_from_json(nlohmann::json::parse(dump_json(to_json(r))));
      EXPECT_EQ(to_json(back), to_json(r));
    }
  }
}

TEST(SynthSuite, GoldTargetParsesInEveryOrder) {
  Rng rng(99);
  std::map<std::string, int> checked;
  for (Split split : {Split::Train, Split::Test}) {
    for (const auto& r : suite(split)) {
      for (int t = 0; t < 4; ++t) {
        Order order = make_schedule(ScheduleKind::Identity, r.n(), 1, 0)[0];
        rng.shuffle(order);
        const std::string text = gold_target(r, order);
        const Judgment j = parse_judgment(text, r.n(), r.range());
        ASSERT_TRUE(j.valid) << j.error << "\n" << text;
        std::vector<int> shown;
        for (int o : order) shown.push_back(r.scores[o]);
        ASSERT_EQ(j.scores, shown) << text;
        EXPECT_EQ(map_back(order, j.scores), r.scores);
        ASSERT_EQ(j.principles.size(), r.principles.size()) << text;
        double sum = 0;
        for (size_t i = 0; i < j.principles.size(); ++i) {
          EXPECT_EQ(j.principles[i].text, r.principles[i].text) << text;
          ASSERT_TRUE(j.principles[i].weight.has_value()) << text;
          EXPECT_NEAR(*j.principles[i].weight, *r.principles[i].weight, 1e-9);
          sum += *j.principles[i].weight;
        }
        EXPECT_NEAR(sum, 1.0, 1e-6);
        EXPECT_NE(j.critique.find("Response " + std::to_string(r.n()) + ": "), std::string::npos);
        ++checked[r.domain];
      }
    }
  }
  ASSERT_EQ(checked.size(), domains().size());
  for (const auto& [domain, count] : checked) EXPECT_GT(count, 1000) << domain;
}

// Splits "a, b, c" at ", ".
std::vector<std::string> steps_of(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    const size_t at = s.find(", ", start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 2;
  }
}

// Evaluates "x+y+1", "13-7", "7*6+4" (left to right, * before +/-) for the checks below.
long eval_expr(const std::string& e) {
  long total = 0, term = 0, sign = 1;
  size_t i = 0;
  auto number = [&] {
    size_t j = i;
    while (j < e.size() && std::isdigit(static_cast<unsigned char>(e[j]))) ++j;
    EXPECT_GT(j, i) << e;
    const long v = std::stol(e.substr(i, j - i));
    i = j;
    return v;
  };
  term = number();
  while (i < e.size()) {
    const char op = e[i++];
    if (op == '*') term *= number();
    else {
      total += sign * term;
      sign = op == '-' ? -1 : 1;
      term = number();
    }
  }
  return total + sign * term;
}

// The arith working recomputes the result digit by digit, every step is right, its digits assemble into the
// final result, and the final equation is true; the string working spells the word it names.
TEST(SynthSuite, WorkingIsCorrect) {
  int arith = 0, string = 0;
  for (Split split : {Split::Train, Split::Test}) {
    for (const auto& r : suite(split)) {
      SCOPED_TRACE(r.id + ": " + r.working);
      if (r.domain == "arith") {
        ++arith;
        const std::vector<std::string> steps = steps_of(r.working);
        ASSERT_GE(steps.size(), 3u);
        const std::string last = steps.back();
        ASSERT_EQ(last.rfind("so ", 0), 0u);
        const size_t eq = last.find('=');
        const long result = std::stol(last.substr(eq + 1));
        EXPECT_EQ(eval_expr(last.substr(3, eq - 3)), result);
        std::string asked = r.query.substr(std::string("What is ").size());  // "397 + 270?" -> "397+270"
        std::erase(asked, ' ');
        EXPECT_EQ(asked, last.substr(3, eq - 3) + "?");
        std::string digits;  // units of every column but the last, which is written whole
        for (size_t k = 0; k + 1 < steps.size(); ++k) {
          const size_t e = steps[k].find('=');
          const long v = std::stol(steps[k].substr(e + 1));
          EXPECT_EQ(eval_expr(steps[k].substr(0, e)), v) << steps[k];
          digits.insert(0, k + 2 < steps.size() ? std::to_string(v % 10) : std::to_string(v));
        }
        EXPECT_EQ(std::stol(digits), result);
        // The correct response is said to be correct, with this result.
        for (size_t i = 0; i < r.analyses.size(); ++i)
          if (r.analyses[i].find(", correct") != std::string::npos) {
            EXPECT_EQ(r.analyses[i].rfind("says " + std::to_string(result) + ",", 0), 0u) << r.analyses[i];
          }
      } else if (r.domain == "string" && r.query.rfind("Sort ", 0) != 0) {
        ++string;
        const size_t close = r.query.rfind('\'');  // the word is the last quoted part
        const size_t open = r.query.rfind('\'', close - 1);
        const std::string word = r.query.substr(open + 1, close - open - 1);
        ASSERT_EQ(r.working.rfind(word + " is ", 0), 0u);
        std::string letters;  // the spelled letters, numbers and spaces dropped
        const std::string spelled = steps_of(r.working.substr(word.size() + 4))[0];
        for (char ch : spelled)
          if (std::isalpha(static_cast<unsigned char>(ch))) letters += ch;
        EXPECT_EQ(letters, word);
      } else {
        EXPECT_EQ(r.working.empty(), r.domain != "string") << r.domain;
      }
    }
  }
  EXPECT_GT(arith, 1000);
  EXPECT_GT(string, 1000);
}

TEST(SynthSuite, GoldTargetRejectsBadOrders) {
  const SynthRecord& r = suite(Split::Train)[0];
  EXPECT_THROW(gold_target(r, Order(static_cast<size_t>(r.n() + 1), 0)), Error);
}

TEST(SynthSuite, TestSplitIsHeldOut) {
  const auto train = generate_suite(Split::Train, 30000, 1);
  std::set<std::string> train_queries;
  for (const auto& r : train) {
    train_queries.insert(r.query);
    ASSERT_EQ(split_of_key(r.domain, r.key), "train") << r.domain << " " << r.key;
  }
  for (const auto& r : suite(Split::Dev)) EXPECT_EQ(split_of_key(r.domain, r.key), "train") << r.key;
  for (const auto& r : suite(Split::Test)) {
    EXPECT_EQ(train_queries.count(r.query), 0u) << r.query;
    EXPECT_EQ(split_of_key(r.domain, r.key), "test") << r.domain << " " << r.key;
    for (const auto& part : split_key(r.key)) EXPECT_NE(r.query.find(part), std::string::npos) << r.key;
  }
  // The documented ranges, checked on the queries themselves.
  for (Split split : {Split::Train, Split::Test}) {
    for (const auto& r : suite(split)) {
      if (r.domain == "arith") {
        const int a = std::stoi(r.query.substr(std::string("What is ").size()));
        EXPECT_EQ(split == Split::Test, std::to_string(a)[0] >= '7') << r.query;
      }
      if (r.domain == "string" && r.query.rfind("Sort ", 0) == 0) {
        for (const auto& part : split_key(r.key)) {
          const int x = std::stoi(part);
          EXPECT_TRUE(split == Split::Test ? (x >= 60 && x <= 99) : (x >= 1 && x <= 59)) << r.query;
        }
      }
    }
  }
  EXPECT_EQ(split_of_key("arith", "999"), "test");
  EXPECT_EQ(split_of_key("help", "Peru|Portugal"), "");
  EXPECT_EQ(split_of_key("nope", "x"), "");
}

TEST(SynthSuite, DomainAndSizeMix) {
  const auto& rs = suite(Split::Train);
  std::map<std::string, int> dom;
  int n1 = 0, n2 = 0, n34 = 0, label1 = 0;
  for (const auto& r : rs) {
    ++dom[r.domain];
    if (r.n() == 1) ++n1, label1 += r.label;
    else if (r.n() == 2) ++n2;
    else ++n34;
  }
  const double total = static_cast<double>(rs.size());
  EXPECT_EQ(dom.size(), 5u);
  for (const auto& [d, c] : dom) EXPECT_NEAR(c / total, 0.2, 0.03) << d;
  EXPECT_NEAR(n1 / total, 0.25, 0.03);
  EXPECT_NEAR(n2 / total, 0.50, 0.03);
  EXPECT_NEAR(n34 / total, 0.25, 0.03);
  EXPECT_NEAR(label1 / static_cast<double>(n1), 0.5, 0.05);
}

TEST(SynthSuite, ScoresAndPrinciplesVary) {
  std::map<std::string, std::set<int>> best_scores, other_scores;
  std::map<std::string, std::set<std::string>> criteria;
  for (const auto& r : suite(Split::Train)) {
    std::string c;
    for (const auto& p : r.principles) c += p.text + std::to_string(*p.weight) + ";";
    criteria[r.domain].insert(c);
    if (r.n() < 2) continue;
    best_scores[r.domain].insert(r.scores[r.best]);
    for (int i = 0; i < r.n(); ++i)
      if (i != r.best) other_scores[r.domain].insert(r.scores[i]);
  }
  for (const auto& d : domains()) {
    EXPECT_GE(criteria[d].size(), 20u) << d;
    EXPECT_GE(other_scores[d].size(), 3u) << d;
  }
  EXPECT_GE(best_scores["arith"].size(), 2u);
  EXPECT_GE(best_scores["string"].size(), 2u);
}

// Correct / acceptable responses (told apart by their analyses) outscore incorrect ones in every record.
bool acceptable(const SynthRecord& r, size_t i) {
  const std::string& a = r.analyses[i];
  if (r.domain == "arith" || r.domain == "string") return a.ends_with(", correct") || a.find(", correct;") != std::string::npos;
  if (r.domain == "safety")
    return a.starts_with("harmful request; refuses") || a.starts_with("safe request; answers");
  if (r.domain == "help") return a.ends_with("both right");
  return false;
}

TEST(SynthSuite, CorrectOutscoresIncorrect) {
  int pairs = 0;
  for (Split split : {Split::Train, Split::Test}) {
    for (const auto& r : suite(split)) {
      if (r.n() == 1) {
        if (r.domain != "instruct") {
          EXPECT_EQ(acceptable(r, 0), r.label == 1) << r.analyses[0];
        }
        continue;
      }
      if (r.domain != "instruct") {
        EXPECT_TRUE(acceptable(r, static_cast<size_t>(r.best))) << r.id;
      }
      for (size_t i = 0; i < r.responses.size(); ++i)
        for (size_t j = 0; j < r.responses.size(); ++j)
          if (acceptable(r, i) && !acceptable(r, j)) {
            EXPECT_GT(r.scores[i], r.scores[j]) << r.id << ": " << r.analyses[i] << " vs " << r.analyses[j];
            ++pairs;
          }
    }
  }
  EXPECT_GT(pairs, 3000);
}

TEST(SynthSuite, RenderedPromptAndTargetAreShort) {
  const Template compact = Template::builtin("compact");
  const Template single = Template::builtin("single-binary");
  size_t longest = 0;
  for (Split split : {Split::Train, Split::Test}) {
    for (const auto& r : suite(split)) {
      const Template& t = r.tmpl == "compact" ? compact : single;
      EXPECT_EQ(t.range().lo, r.range().lo);
      EXPECT_EQ(t.range().hi, r.range().hi);
      const size_t len = t.render(Conversation::from_query(r.query), r.responses).size() + r.target.size();
      EXPECT_LT(len, 1450u) << r.id << "\n" << r.target;
      longest = std::max(longest, len);
    }
  }
  std::cout << "longest prompt + target: " << longest << " bytes\n";
}

TEST(SynthSuite, FromJsonRejectsBrokenGroundTruth) {
  const SynthRecord* pair = nullptr;
  for (const auto& r : suite(Split::Train))
    if (r.n() == 2) pair = &r;
  ASSERT_NE(pair, nullptr);
  nlohmann::json j = to_json(*pair);
  j["best"] = 1 - pair->best;
  EXPECT_THROW(synth_from_json(j), Error);
  j = to_json(*pair);
  j["scores"] = {5, 5};
  EXPECT_THROW(synth_from_json(j), Error);
  j = to_json(*pair);
  j.erase("responses");
  EXPECT_THROW(synth_from_json(j), Error);
  j = to_json(*pair);
  j.erase("target");
  EXPECT_EQ(synth_from_json(j).target, pair->target);
  EXPECT_THROW(parse_split("validation"), Error);
}

TEST(SynthCli, WritesTheSuiteAtomically) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("grm_synth_test_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()));
  fs::create_directories(dir);
  const fs::path out = dir / "dev.jsonl";
  const std::string cmd = std::string(GRM_BINARY) + " synth --split dev --n 25 --seed 3 --out " + out.string();
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream in(out);
  const auto expected = generate_suite(Split::Dev, 25, 3);
  size_t i = 0;
  for (std::string line; std::getline(in, line); ++i) {
    ASSERT_LT(i, expected.size());
    EXPECT_EQ(nlohmann::json::parse(line), to_json(expected[i]));
  }
  EXPECT_EQ(i, expected.size());
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().filename(), "dev.jsonl");
  const std::string bad = std::string(GRM_BINARY) + " synth --split nope --n 1 > /dev/null 2>&1";
  EXPECT_NE(std::system(bad.c_str()), 0);
  fs::remove_all(dir);
}

}  // namespace
}  // namespace grm::synth
