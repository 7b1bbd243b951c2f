// `grm eval` as users run it (the binary; skipped when it has not been built).
#include <gtest/gtest.h>

#include <unistd.h>
#include <sys/wait.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "eval/store.h"

using namespace grm::eval;
namespace fs = std::filesystem;

namespace {

struct CliRun {
  int rc = -1;
  std::string err;
};

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

CliRun run_grm(const std::string& args) {
  // One file per test process: ctest -j runs this file's tests as concurrent processes.
  const std::string err = testing::TempDir() + "/grm_eval_cli_err." + std::to_string(getpid());
  const int status = std::system((std::string(GRM_BINARY) + " " + args + " </dev/null >/dev/null 2>" + err).c_str());
  CliRun run{WIFEXITED(status) ? WEXITSTATUS(status) : -1, slurp(err)};
  fs::remove(err);
  return run;
}

#define NEED_BINARY() \
  if (!fs::exists(GRM_BINARY)) GTEST_SKIP() << "grm binary not built"

}  // namespace

TEST(EvalCli, MetaModelIsNotAvailableYet) {
  NEED_BINARY();
  const CliRun r = run_grm("eval --meta-model /nowhere --bench rewardbench --data " + std::string(GRM_TEST_DATA) +
                    "/bench/rewardbench.jsonl");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("--meta-model"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("not implemented"), std::string::npos) << r.err;
}

TEST(EvalCli, BadArguments) {
  NEED_BINARY();
  EXPECT_EQ(run_grm("eval").rc, 2);
  EXPECT_NE(run_grm("eval --bench nosuch --data x.jsonl").err.find("unknown benchmark"), std::string::npos);
  EXPECT_NE(run_grm("eval --bench rmb --bench rmb --data a --data b --data c").err.find("--bench"), std::string::npos);
  EXPECT_EQ(run_grm("eval --ties sometimes --samples /nonexistent.jsonl").rc, 2);
}

// Re-aggregation from a samples file that carries meta scores gives MetaRM@k without any model.
TEST(EvalCli, ReaggregatesSamplesWithMetaScores) {
  NEED_BINARY();
  const fs::path dir = fs::path(testing::TempDir()) / "grm_eval_cli_meta";
  fs::remove_all(dir);
  fs::create_directories(dir);
  {
    StoreWriter w((dir / "samples.jsonl").string(), 0);
    StoredSource src;
    src.bench = "ppe-pref";
    src.file = "ppe";
    src.rows = 5;
    src.excluded = 1;
    src.k_max = 4;
    w.append(to_json(src));
    for (int i = 0; i < 6; ++i) {
      StoredItem it;
      it.bench = "ppe-pref";
      it.key = "ppe:" + std::to_string(i);
      it.n = 2;
      it.best = i % 2;
      for (int j = 0; j < 4; ++j) {
        const bool right = (i + j) % 3 != 0;
        std::vector<int> s = {5, 5};
        s[static_cast<size_t>(right ? it.best : 1 - it.best)] = 8;
        it.samples.push_back({{0, 1}, s, true, "", right ? 2.0 : -2.0});
      }
      w.append(to_json(it));
    }
  }
  const CliRun r = run_grm("eval --samples " + (dir / "samples.jsonl").string() + " --bootstrap 50");
  ASSERT_EQ(r.rc, 0) << r.err;
  const auto j = nlohmann::json::parse(slurp((dir / "results.json").string()));
  const auto& b = j["benchmarks"]["ppe-pref"];
  EXPECT_EQ(b["excluded"], 1);
  EXPECT_DOUBLE_EQ(b["metarm"]["4"].get<double>(), 100.0);  // the meta RM keeps the 2 right samples
  EXPECT_TRUE(b["voting"]["1"].is_number());
  EXPECT_TRUE(fs::exists(dir / "results.md"));
}
