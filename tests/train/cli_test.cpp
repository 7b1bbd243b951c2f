// grm train tokenizer / sft as users run them.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>
#include <spawn.h>
#include <sys/wait.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <thread>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "engine/bpe.h"
#include "engine/weights.h"
#include "train_test_util.h"

namespace fs = std::filesystem;

namespace {

struct Run {
  int rc = -1;
  std::string output;  // stdout + stderr
};

Run run_grm(const std::string& args) {
  Run r;
  FILE* p = ::popen((std::string(GRM_BINARY) + " " + args + " 2>&1").c_str(), "r");
  if (!p) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return r;
}

// step → loss of a --log file.
std::map<int, double> losses_by_step(const std::string& log) {
  std::map<int, double> out;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) {
    const auto j = nlohmann::json::parse(line);
    out[j["step"].get<int>()] = j["loss"].get<double>();
  }
  return out;
}

std::vector<double> losses_of(const std::string& log) {
  std::vector<double> out;
  std::ifstream in(log);
  for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line)["loss"].get<double>());
  return out;
}

// A prompt/target JSONL file (the generic SFT format) with the toy examples.
std::string write_pairs(const std::string& dir) {
  const std::string path = dir + "/pairs.jsonl";
  std::ofstream out(path);
  for (const auto& e : train_test::toy_examples())
    out << nlohmann::json{{"prompt", e.prompt}, {"target", e.target}}.dump() << "\n";
  return path;
}

}  // namespace

TEST(TrainCli, TokenizerWritesALoadableTokenizer) {
  const std::string dir = train_test::temp_dir("cli-tok");
  {
    std::ofstream text(dir + "/corpus.txt");
    for (int i = 0; i < 50; ++i) text << "the judge writes criteria, an analysis and scores " << i << "\n";
  }
  const auto r = run_grm("train tokenizer --data " + dir + "/corpus.txt " + write_pairs(dir) + " --vocab 300 --out " +
                     dir + "/tok/tokenizer.json");
  ASSERT_EQ(r.rc, 0) << r.output;
  const auto tok = grm::engine::BpeTokenizer::from_json_file(dir + "/tok/tokenizer.json");
  EXPECT_EQ(tok.vocab_size(), 300);
  ASSERT_TRUE(tok.eos_id().has_value());
  EXPECT_EQ(tok.token_bytes(*tok.eos_id()), "<|endoftext|>");
  const std::string s = "the judge writes scores 7 <|endoftext|>";
  EXPECT_EQ(tok.decode(tok.encode(s)), s);
  EXPECT_LT(tok.encode("the judge writes criteria").size(), 10u);  // merges were learned
  fs::remove_all(dir);
}

TEST(TrainCli, SftFromRandomInitResumesExactlyAndLoads) {
  const std::string dir = train_test::temp_dir("cli-sft");
  const std::string data = write_pairs(dir);
  train_test::byte_tokenizer()->save(dir + "/tokenizer.json");
  std::ofstream(dir + "/config.json") << train_test::tiny_config(300).to_json().dump();
  const std::string common = " --data " + data + " --init-config " + dir + "/config.json --tokenizer " + dir +
                             "/tokenizer.json --batch 2 --lr 3e-3 --warmup 2 --seed 3 --quiet";

  auto r = run_grm("train sft --out " + dir + "/a --steps 6 --log " + dir + "/a.jsonl" + common);
  ASSERT_EQ(r.rc, 0) << r.output;
  r = run_grm("train sft --out " + dir + "/b --steps 6 --save-every 3 --log " + dir + "/b.jsonl" + common);
  ASSERT_EQ(r.rc, 0) << r.output;
  // Starting over on an existing run is refused; --resume continues it.
  r = run_grm("train sft --out " + dir + "/a --steps 6" + common);
  EXPECT_EQ(r.rc, 2);
  EXPECT_NE(r.output.find("--resume"), std::string::npos) << r.output;
  // A run stopped at step 3 and resumed gives the same losses as the uninterrupted one.
  r = run_grm("train sft --out " + dir + "/c --steps 3 --log " + dir + "/c.jsonl" + common);
  ASSERT_EQ(r.rc, 0) << r.output;
  r = run_grm("train sft --out " + dir + "/c --steps 6 --resume --log " + dir + "/c.jsonl" + common);
  ASSERT_EQ(r.rc, 0) << r.output;
  const auto a = losses_of(dir + "/a.jsonl"), c = losses_of(dir + "/c.jsonl");
  ASSERT_EQ(a.size(), 6u);
  EXPECT_EQ(a, c);
  EXPECT_EQ(a, losses_of(dir + "/b.jsonl"));  // checkpointing does not disturb training

  // training.json names the data by file name and size, not by its absolute path.
  std::ifstream info_file(dir + "/c/training.json");
  const auto info = nlohmann::json::parse(info_file);
  EXPECT_EQ(info.at("data"), fs::path(data).filename().string());
  EXPECT_EQ(info.at("data_bytes"), fs::file_size(data));
  EXPECT_EQ(info.at("step"), 6);

  auto model = grm::engine::load_model(dir + "/c", torch::kFloat);
  EXPECT_EQ(model->config().vocab_size, 257);  // taken from the tokenizer
  EXPECT_EQ(model->config().eos_token_ids, std::vector<int64_t>{256});
  r = run_grm("generate --model " + dir + "/c --prompt 'Q: 2+2?\nA:' --max-tokens 4 --temperature 0");
  EXPECT_EQ(r.rc, 0) << r.output;
  fs::remove_all(dir);
}

TEST(TrainCli, KillNineLeavesALoadableCheckpointAndResumeMatches) {
  const std::string dir = train_test::temp_dir("cli-kill");
  const std::string data = write_pairs(dir);
  train_test::byte_tokenizer()->save(dir + "/tokenizer.json");
  std::ofstream(dir + "/config.json") << train_test::tiny_config(300).to_json().dump();
  const std::string common = " --data " + data + " --init-config " + dir + "/config.json --tokenizer " + dir +
                             "/tokenizer.json --batch 2 --lr 3e-3 --warmup 2 --seed 5 --quiet --steps 400";
  auto r = run_grm("train sft --out " + dir + "/full --log " + dir + "/full.jsonl" + common);
  ASSERT_EQ(r.rc, 0) << r.output;
  const auto full = losses_by_step(dir + "/full.jsonl");
  ASSERT_EQ(full.size(), 400u);

  // The same run, checkpointing every step, killed with SIGKILL while it is busy writing checkpoints.
  std::vector<std::string> args = {GRM_BINARY, "train", "sft", "--out", dir + "/killed", "--save-every", "1",
                                   "--log", dir + "/killed.jsonl"};
  {
    std::istringstream words(common);
    for (std::string w; words >> w;) args.push_back(w);
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  posix_spawn_file_actions_t quiet;
  posix_spawn_file_actions_init(&quiet);
  posix_spawn_file_actions_addopen(&quiet, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&quiet, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = 0;
  ASSERT_EQ(::posix_spawn(&pid, GRM_BINARY, &quiet, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&quiet);
  const std::string state = dir + "/killed/trainer_state.safetensors";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!fs::exists(state) && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  ::kill(pid, SIGKILL);
  int status = 0;
  ::waitpid(pid, &status, 0);
  const auto logged = losses_by_step(dir + "/killed.jsonl");
  ASSERT_FALSE(logged.empty());
  ASSERT_LT(logged.size(), 400u) << "the run finished before it was killed; the test did not test anything";

  // Whatever the moment of the kill, the checkpoint directory loads and the run resumes to the same losses.
  auto model = grm::engine::load_model(dir + "/killed", torch::kFloat);
  EXPECT_EQ(model->config().vocab_size, 257);
  r = run_grm("train sft --out " + dir + "/killed --resume --log " + dir + "/resumed.jsonl" + common);
  ASSERT_EQ(r.rc, 0) << r.output;
  const auto resumed = losses_by_step(dir + "/resumed.jsonl");
  ASSERT_FALSE(resumed.empty());
  EXPECT_EQ(resumed.rbegin()->first, 400);
  EXPECT_LE(resumed.begin()->first, logged.rbegin()->first + 1);  // no step skipped
  for (const auto& [step, loss] : resumed) EXPECT_EQ(loss, full.at(step)) << "step " << step;
  for (const auto& e : fs::directory_iterator(dir + "/killed"))
    EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
  fs::remove_all(dir);
}
