// `grm generate` and `grm score` end to end on a random-init model (made with `grm init-model`).
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "cli_test.h"

using nlohmann::json;

namespace {

const std::string& model_dir() {
  static const std::string dir = [] {
    const std::string d = (std::filesystem::temp_directory_path() / ("grm-cli-model-" + std::to_string(getpid()))).string();
    auto r = run_grm("init-model --config " + std::string(GRM_TEST_DATA) + "/configs/cli-tiny.json --out " + d + " --seed 3");
    EXPECT_EQ(r.rc, 0) << r.err;
    return d;
  }();
  return dir;
}

std::vector<json> lines(const std::string& out) {
  std::vector<json> v;
  std::istringstream in(out);
  std::string l;
  while (std::getline(in, l))
    if (!l.empty()) v.push_back(json::parse(l));
  return v;
}

}  // namespace

TEST(CliGenerate, SameArgumentsSameOutput) {
  const std::string args = "generate --model " + model_dir() + " --prompt 'Judge this.' -n 4 --max-tokens 12 --seed 9";
  auto a = run_grm(args), b = run_grm(args);
  ASSERT_EQ(a.rc, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  auto v = lines(a.out);
  ASSERT_EQ(v.size(), 4u);
  for (const auto& j : v) {
    EXPECT_TRUE(j["text"].is_string());
    EXPECT_LE(j["completion_tokens"].get<int>(), 12);
    EXPECT_GT(j["prompt_tokens"].get<int>(), 0);
  }
  EXPECT_NE(run_grm("generate --model " + model_dir() + " --prompt 'Judge this.' -n 4 --max-tokens 12 --seed 10").out, a.out);
}

// Every KV cache storage runs (same prompt, same seed: well-formed samples); a bad name is a usage error that
// names its option.
TEST(CliGenerate, KvDtypeChoicesAndErrors) {
  const std::string args = "generate --model " + model_dir() + " --prompt 'Judge this.' -n 2 --max-tokens 6 --seed 9";
  for (const char* kv : {"auto", "f32", "f16", "bf16"}) {
    const auto r = run_grm(args + " --kv-dtype " + kv);
    ASSERT_EQ(r.rc, 0) << kv << ": " << r.err;
    EXPECT_EQ(lines(r.out).size(), 2u) << kv;
  }
  auto bad = run_grm(args + " --kv-dtype int8");
  EXPECT_EQ(bad.rc, 2);
  EXPECT_NE(bad.err.find("--kv-dtype"), std::string::npos) << bad.err;
  bad = run_grm(args + " --dtype int8");
  EXPECT_EQ(bad.rc, 2);
  EXPECT_NE(bad.err.find("--dtype"), std::string::npos) << bad.err;
}

// With and without packed weights: same request, well-formed samples; greedy decoding of one sequence gives
// the same text here (the products round differently, e.g. the tied head's logits are dot products without
// packing; the differences are ~1e-6, below the bundled model's gaps between its top logits on this prompt).
TEST(CliGenerate, NoPackWeightsRuns) {
  const std::string args = "generate --model " + model_dir() + " --prompt 'Judge this.' -n 2 --max-tokens 8 --seed 9";
  const auto packed = run_grm(args), plain = run_grm(args + " --no-pack-weights");
  ASSERT_EQ(packed.rc, 0) << packed.err;
  ASSERT_EQ(plain.rc, 0) << plain.err;
  EXPECT_EQ(lines(plain.out).size(), 2u);
  const std::string greedy = "generate --model " + model_dir() + " --prompt 'Judge this.' -n 1 --max-tokens 8 --temperature 0";
  EXPECT_EQ(run_grm(greedy).out, run_grm(greedy + " --no-pack-weights").out);
}

TEST(CliGenerate, CorruptModelIsExit2NamingTheFile) {
  const std::string bad = model_dir() + "-corrupt";
  std::filesystem::remove_all(bad);
  std::filesystem::copy(model_dir(), bad);
  const auto st = bad + "/model.safetensors";
  std::filesystem::resize_file(st, std::filesystem::file_size(st) / 2);
  auto r = run_grm("generate --model " + bad + " --prompt hi");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("model.safetensors"), std::string::npos) << r.err;
  std::ofstream(bad + "/config.json") << "{not json";
  r = run_grm("generate --model " + bad + " --prompt hi");
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.err.find("config.json"), std::string::npos) << r.err;
  std::filesystem::remove_all(bad);
}

TEST(CliScore, KSamplesWellFormedAndInvalidJudgmentsAbstain) {
  auto r = run_grm("score --model " + model_dir() + " --template compact -k 4 --max-tokens 16 --query 'What is 2+2?' "
                   "--response 4 --response 5");
  ASSERT_EQ(r.rc, 0) << r.err;
  auto v = lines(r.out);
  ASSERT_EQ(v.size(), 1u);
  const json& j = v[0];
  EXPECT_EQ(j["samples_used"], 4);
  ASSERT_EQ(j["samples"].size(), 4u);
  EXPECT_EQ(j["rewards"].size(), 2u);
  // A random-init model writes no valid judgment: every sample is an abstention, no best.
  EXPECT_EQ(j["abstentions"].get<int>() + j["valid_samples"].get<int>(), 4);
  for (const auto& s : j["samples"]) {
    EXPECT_EQ(s["order"].size(), 2u);
    if (!s["valid"].get<bool>()) {
      EXPECT_TRUE(s["error"].is_string());
    }
  }
}

TEST(CliScore, JsonlWithBadRecordsScoresTheRestAndExits2) {
  const std::string input =
      "{\"id\": \"a\", \"query\": \"q1\", \"responses\": [\"x\", \"y\"]}\n"
      "{\"id\": \"b\", \"responses\": [\"x\"]}\n"
      "{\"id\": \"c\", \"messages\": [{\"role\": \"user\", \"content\": \"hi\"}], \"responses\": [\"x\", \"y\", \"z\"]}\n"
      "not json\n"
      "{\"id\": \"e\", \"query\": \"q\", \"responses\": [1, 2]}\n"
      "{\"id\": \"f\", \"query\": \"\xff\", \"responses\": [\"x\"]}\n"
      "{\"id\": \"g\", \"query\": \"q\", \"responses\": [\"" + std::string(3000, 'w') + "\", \"y\"]}\n";
  auto r = run_grm("score --model " + model_dir() + " --template compact -k 2 --max-tokens 8", input);
  EXPECT_EQ(r.rc, 2);
  auto v = lines(r.out);
  ASSERT_EQ(v.size(), 7u);
  EXPECT_EQ(v[0]["id"], "a");
  EXPECT_EQ(v[0]["samples_used"], 2);
  EXPECT_EQ(v[1]["id"], "b");
  EXPECT_NE(v[1]["error"].get<std::string>().find("stdin:2:"), std::string::npos);
  EXPECT_EQ(v[2]["rewards"].size(), 3u);
  EXPECT_NE(v[3]["error"].get<std::string>().find("stdin:4:"), std::string::npos);
  EXPECT_EQ(v[4]["id"], "e");
  EXPECT_NE(v[4]["error"].get<std::string>().find("must be a string"), std::string::npos);
  EXPECT_NE(v[5]["error"].get<std::string>().find("UTF-8"), std::string::npos);
  // A prompt longer than the model's context (2048) fails that record only, naming its line.
  EXPECT_EQ(v[6]["id"], "g");
  EXPECT_NE(v[6]["error"].get<std::string>().find("does not fit the model's context of 2048"), std::string::npos) << v[6];
  EXPECT_NE(r.err.find("stdin:7: prompt of"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("5 of 7 records"), std::string::npos) << r.err;
}

TEST(CliScore, SameSeedSameOutputAndUsageErrors) {
  const std::string args = "score --model " + model_dir() + " --template compact -k 3 --max-tokens 8 --seed 4 --keep-text";
  const std::string in = "{\"query\": \"q\", \"responses\": [\"a\", \"b\"]}\n";
  auto a = run_grm(args, in), b = run_grm(args, in);
  ASSERT_EQ(a.rc, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  EXPECT_EQ(run_grm(args + " --aggregate meta", in).rc, 2);
  EXPECT_NE(run_grm(args + " --aggregate meta", in).err.find("meta model"), std::string::npos);
  EXPECT_EQ(run_grm(args + " --schedule zigzag", in).rc, 2);
  EXPECT_EQ(run_grm(args + " --early-stop --round-size 0", in).rc, 2);
  // A random-init model abstains, so nothing is ever decided early: every sample is drawn, in rounds.
  const auto rounds = run_grm("score --model " + model_dir() + " --template compact -k 6 --max-tokens 8 --early-stop "
                              "--round-size 2", in);
  ASSERT_EQ(rounds.rc, 0) << rounds.err;
  EXPECT_EQ(lines(rounds.out).at(0)["samples_used"], 6);
  EXPECT_EQ(run_grm("score --model /nonexistent --query q --response a").rc, 2);
  EXPECT_EQ(run_grm(args + " --query q", "").rc, 2);
}
