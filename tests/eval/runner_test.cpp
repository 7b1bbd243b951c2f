// End to end: fixtures in the public formats → FakeJudge sampling → samples.jsonl → results.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"
#include "core/jsonl.h"
#include "eval/runner.h"
#include "eval/store.h"
#include "support/fake_judge.h"

using namespace grm;
using namespace grm::eval;
namespace fs = std::filesystem;
using Json = nlohmann::json;

namespace {

std::string data(const std::string& name) { return std::string(GRM_TEST_DATA) + "/bench/" + name; }

std::string fresh_dir(const std::string& name) {
  const fs::path p = fs::path(testing::TempDir()) / ("grm_eval_" + name);
  fs::remove_all(p);
  return p.string();
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json results(const std::string& dir) { return Json::parse(slurp(dir + "/results.json")); }

EvalOptions options(const std::string& out) {
  EvalOptions o;
  o.inputs = {{"rewardbench", data("rewardbench.jsonl")}, {"rewardbench", data("rewardbench.json")},
              {"ppe-pref", data("ppe_pref.jsonl")},       {"ppe-correct", data("mmlu_pro.jsonl")},
              {"ppe-correct", data("math.json")},         {"rmb", data("rmb_pairwise.jsonl")},
              {"rmb", data("rmb_bon.json")},              {"realmistake", data("realmistake.jsonl")},
              {"synth", data("synth.jsonl")}};
  o.out_dir = out;
  o.k_max = 8;
  o.greedy = true;
  o.bootstrap = 100;
  o.chunk = 5;
  o.plot = false;
  return o;
}

// Hooks around a judge owned by the test (the runner takes ownership of what open_generator returns).
struct Borrowed : Generator {
  explicit Borrowed(Generator& g) : g(g) {}
  std::vector<std::vector<Completion>> generate(const std::vector<GenerationRequest>& r) override { return g.generate(r); }
  Generator& g;
};

ModelHooks hooks(test::FakeJudge& judge, int* opened = nullptr) {
  ModelHooks h;
  h.open_generator = [&judge, opened]() -> std::unique_ptr<Generator> {
    if (opened) ++*opened;
    return std::make_unique<Borrowed>(judge);
  };
  h.default_template = [] { return Template::builtin("compact"); };
  return h;
}

Json without_config(Json j) {
  j.erase("config");
  return j;
}

size_t count_lines(const std::string& path) {
  const std::string s = slurp(path);
  return static_cast<size_t>(std::count(s.begin(), s.end(), '\n'));
}

}  // namespace

TEST(EvalRunner, EndToEndWithFakeJudge) {
  const std::string dir = fresh_dir("e2e");
  test::FakeJudge judge;
  judge.noise = 2;
  judge.invalid_every = 7;
  EvalOptions o = options(dir);
  o.plot = true;
  const EvalSummary sum = run_eval(o, hooks(judge));
  // 9 (RB) + 3 (PPE-P) + 6 (PPE-C) + 5 (RMB) + 8 (ReaLMistake) + 7 (synth) items, each sampled and greedy.
  EXPECT_EQ(sum.sampled, 2u * 38);
  EXPECT_EQ(judge.completions, 38 * 9);
  EXPECT_EQ(count_lines(dir + "/samples.jsonl"), 9u + 2 * 38);
  const Json r = results(dir);
  EXPECT_EQ(r["units"], "percent");
  EXPECT_EQ(r["ks"], Json({1, 2, 4, 8}));
  const Json& rb = r["benchmarks"]["rewardbench"];
  EXPECT_EQ(rb["n"], 9);
  EXPECT_EQ(rb["excluded"], 1);
  EXPECT_EQ(rb["malformed"], 3);
  EXPECT_EQ(rb["samples"], 72);
  EXPECT_GT(rb["invalid_samples"].get<int>(), 0);
  for (const char* k : {"1", "2", "4", "8"}) {
    ASSERT_TRUE(rb["voting"].contains(k)) << k;
    ASSERT_EQ(rb["ci95"][k].size(), 2u);
    EXPECT_LE(rb["ci95"][k][0].get<double>(), rb["voting"][k].get<double>());
    EXPECT_GE(rb["ci95"][k][1].get<double>(), rb["voting"][k].get<double>());
  }
  EXPECT_TRUE(rb["greedy"].is_number());
  EXPECT_FALSE(rb.contains("metarm"));  // no meta scores were stored
  EXPECT_TRUE(rb["sub_scores"]["sections"].contains("Chat"));
  EXPECT_TRUE(rb["sub_scores"]["subsets"].contains("alpacaeval-hard"));
  EXPECT_EQ(r["benchmarks"]["ppe-pref"]["excluded"], 1);
  EXPECT_EQ(r["benchmarks"]["ppe-correct"]["n"], 6);
  EXPECT_TRUE(r["benchmarks"]["ppe-correct"]["sub_scores"]["source_sets"].contains("MATH"));
  EXPECT_TRUE(r["benchmarks"]["ppe-correct"]["sub_scores"]["source_sets"].contains("mmlu_pro"));
  EXPECT_TRUE(r["benchmarks"]["rmb"]["sub_scores"]["categories"].contains("Harmlessness BoN"));
  EXPECT_TRUE(r["benchmarks"]["realmistake"]["voting"]["8"].is_number());
  EXPECT_TRUE(r["benchmarks"]["synth"]["sub_scores"]["domains"].contains("code"));
  EXPECT_TRUE(r["benchmarks"]["synth"]["sub_scores"]["summary"].contains("auc"));
  // Per-domain parse validity adds up to the benchmark's counts.
  {
    const Json& synth = r["benchmarks"]["synth"];
    int samples = 0, invalid = 0;
    for (const auto& [domain, c] : synth["validity"]["domain"].items()) {
      samples += c["samples"].get<int>();
      invalid += c["invalid"].get<int>();
    }
    EXPECT_EQ(samples, synth["samples"].get<int>());
    EXPECT_EQ(invalid, synth["invalid_samples"].get<int>());
    EXPECT_GT(invalid, 0);
  }
  EXPECT_EQ(r["overall"]["benchmarks"].size(), 4u);
  // Overall is the mean of the four headlines.
  double mean = 0;
  for (const char* b : {"rewardbench", "ppe-pref", "ppe-correct", "rmb"}) mean += r["benchmarks"][b]["voting"]["8"].get<double>();
  EXPECT_NEAR(r["overall"]["voting"]["8"].get<double>(), mean / 4, 2e-3);
  EXPECT_GE(r["overall"]["voting"]["8"].get<double>(), r["overall"]["voting"]["1"].get<double>());
  const std::string md = slurp(dir + "/results.md");
  EXPECT_NE(md.find("| **Overall** |"), std::string::npos);
  EXPECT_NE(md.find("sections/Chat Hard"), std::string::npos);
  if (sum.plot_error.empty()) {
    EXPECT_GT(fs::file_size(dir + "/scaling.png"), 1000u);
    EXPECT_NE(slurp(dir + "/scaling.svg").find("<svg"), std::string::npos);
  } else {
    ADD_FAILURE() << "plot: " << sum.plot_error;
  }
}

TEST(EvalRunner, ResumeAfterInterruptionGivesTheSameResults) {
  const std::string full = fresh_dir("full"), cut = fresh_dir("cut");
  test::FakeJudge a;
  a.noise = 3;
  run_eval(options(full), hooks(a));
  // Interrupted run: the judge fails part-way; then the last line is also cut mid-way.
  test::FakeJudge b;
  b.noise = 3;
  b.fail_after = 150;
  EXPECT_THROW(run_eval(options(cut), hooks(b)), std::runtime_error);
  const std::string store = cut + "/samples.jsonl";
  const size_t lines = count_lines(store);
  EXPECT_GT(lines, 9u);
  fs::resize_file(store, fs::file_size(store) - 40);  // truncate mid-line
  test::FakeJudge c;
  c.noise = 3;
  const EvalSummary s = run_eval(options(cut), hooks(c));
  EXPECT_GT(s.resumed, 0u);
  EXPECT_LT(c.completions, a.completions);
  EXPECT_EQ(b.completions + c.completions > a.completions, true);  // the cut item was sampled again
  EXPECT_EQ(without_config(results(cut)), without_config(results(full)));
  EXPECT_EQ(count_lines(store), count_lines(full + "/samples.jsonl"));
  // A complete run resumes without opening the model at all.
  int opened = 0;
  test::FakeJudge d;
  run_eval(options(cut), hooks(d, &opened));
  EXPECT_EQ(opened, 0);
  EXPECT_EQ(without_config(results(cut)), without_config(results(full)));
}

TEST(EvalRunner, ReaggregateStoredSamplesWithoutAModel) {
  const std::string dir = fresh_dir("re"), out = fresh_dir("re_out");
  test::FakeJudge judge;
  judge.noise = 2;
  run_eval(options(dir), hooks(judge));
  EvalOptions o;
  o.samples_file = dir + "/samples.jsonl";
  o.out_dir = out;
  o.bootstrap = 100;
  o.plot = false;
  ModelHooks none;  // no model
  run_eval(o, none);
  EXPECT_EQ(without_config(results(out)), without_config(results(dir)));
  o.bench_filter = {"rmb"};
  run_eval(o, none);
  EXPECT_EQ(results(out)["benchmarks"].size(), 1u);
  EXPECT_FALSE(results(out)["overall"]["voting"].is_null());
}

// MetaRM@k from stored samples that carry meta scores: an oracle meta RM (+1 when the sample alone ranks the
// best response strictly first, -1 otherwise) must beat plain voting.
TEST(EvalRunner, MetaRmFromStoredMetaScores) {
  const std::string dir = fresh_dir("meta");
  test::FakeJudge judge;
  judge.noise = 4;
  run_eval(options(dir), hooks(judge));
  std::ifstream in(dir + "/samples.jsonl");
  std::string line, rewritten;
  while (std::getline(in, line)) {
    Json j = Json::parse(line);
    if (j.contains("samples") && !j.value("greedy", false))
      for (auto& s : j["samples"]) {
        if (!s["valid"].get<bool>()) continue;
        const auto sc = s["scores"].get<std::vector<int>>();
        bool top = true;
        if (j["n"].get<int>() >= 2) {
          const int best = j["best"].get<int>();
          for (size_t i = 0; i < sc.size(); ++i) top &= static_cast<int>(i) == best || sc[i] < sc[static_cast<size_t>(best)];
        } else {
          top = (sc[0] >= 5) == (j["label"].get<int>() == 1);
        }
        s["meta"] = top ? 1.0 : -1.0;
      }
    rewritten += j.dump() + "\n";
  }
  std::ofstream(dir + "/meta.jsonl") << rewritten;
  EvalOptions o;
  o.samples_file = dir + "/meta.jsonl";
  o.out_dir = dir;
  o.bootstrap = 100;
  o.plot = false;
  run_eval(o, ModelHooks{});
  const Json r = results(dir);
  for (const char* b : {"rewardbench", "ppe-pref", "ppe-correct", "rmb", "realmistake", "synth"}) {
    ASSERT_TRUE(r["benchmarks"][b].contains("metarm")) << b;
    EXPECT_TRUE(r["benchmarks"][b]["metarm_ci95"].contains("8")) << b;
  }
  EXPECT_GT(r["overall"]["metarm"]["8"].get<double>(), r["overall"]["voting"]["8"].get<double>());
  EXPECT_GE(r["benchmarks"]["rewardbench"]["metarm"]["8"].get<double>(),
            r["benchmarks"]["rewardbench"]["voting"]["8"].get<double>());
}

TEST(EvalRunner, UserErrors) {
  const std::string dir = fresh_dir("errors");
  test::FakeJudge judge;
  judge.noise = 2;
  EvalOptions o = options(dir);
  o.inputs.resize(1);
  run_eval(o, hooks(judge));
  o.k_max = 4;  // the store was sampled with k_max 8
  EXPECT_THROW(run_eval(o, hooks(judge)), Error);
  o.k_max = 8;
  ModelHooks other = hooks(judge);  // ... and with the compact template
  other.default_template = [] { return Template::builtin("default"); };
  EXPECT_THROW(run_eval(o, other), Error);
  EXPECT_NO_THROW(run_eval(o, hooks(judge)));
  EvalOptions none;
  none.out_dir = dir;
  EXPECT_THROW(run_eval(none, hooks(judge)), Error);  // nothing to evaluate
  none.samples_file = dir + "/missing.jsonl";
  EXPECT_THROW(run_eval(none, hooks(judge)), Error);
  none.samples_file = dir + "/samples.jsonl";
  none.inputs = o.inputs;
  EXPECT_THROW(run_eval(none, hooks(judge)), Error);  // --samples with --data
}
