// `grm parse` and `grm vote` as pinned in the foundation issue.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "cli_test.h"

using nlohmann::json;

TEST(CliVersion, HelpAndVersion) {
  auto r = run_grm("--version");
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("grm "), std::string::npos);
  r = run_grm("--help");
  EXPECT_EQ(r.rc, 0);
  EXPECT_NE(r.out.find("parse"), std::string::npos);
  EXPECT_NE(r.out.find("vote"), std::string::npos);
  EXPECT_EQ(run_grm("no-such-command").rc, 2);
}

TEST(CliParse, ValidJudgment) {
  auto r = run_grm("parse --responses 2",
                   "Specific Criteria: Accuracy (Weight: 40%); Clarity (Weight: 60%)\nAnalysis: A is right.\n"
                   "**Scores: \\boxed{8, 7}**\n");
  ASSERT_EQ(r.rc, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_TRUE(j["valid"].get<bool>());
  EXPECT_EQ(j["scores"], json::parse("[8, 7]"));
  ASSERT_EQ(j["principles"].size(), 2u);
  EXPECT_EQ(j["principles"][0]["text"], "Accuracy");
  EXPECT_DOUBLE_EQ(j["principles"][0]["weight"].get<double>(), 0.4);
  EXPECT_EQ(j["critique"], "A is right.");
  EXPECT_FALSE(j.contains("error"));
}

TEST(CliParse, InvalidJudgmentStillExitsZero) {
  auto r = run_grm("parse --responses 3", "Scores: \\boxed{8, 7}");
  ASSERT_EQ(r.rc, 0);
  json j = json::parse(r.out);
  EXPECT_FALSE(j["valid"].get<bool>());
  EXPECT_EQ(j["error"], "wrong count: expected 3, got 2");
  r = run_grm("parse --responses 1", std::string("\xff\xfe garbage \x00", 12));
  ASSERT_EQ(r.rc, 0);
  EXPECT_FALSE(json::parse(r.out)["valid"].get<bool>());
}

TEST(CliParse, BadArguments) {
  EXPECT_EQ(run_grm("parse").rc, 2);
  EXPECT_EQ(run_grm("parse --responses 0").rc, 2);
  EXPECT_EQ(run_grm("parse --responses 2 --score-min 5 --score-max 5", "x").rc, 2);
}

TEST(CliVote, PaperWorkedExample) {
  auto r = run_grm("vote",
                   "{\"order\": [0, 1], \"scores\": [8, 8]}\n"
                   "{\"order\": [1, 0], \"scores\": [9, 5]}\n"
                   "{\"order\": [1, 0], \"scores\": [10, 7]}\n");
  ASSERT_EQ(r.rc, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["rewards"], json::parse("[20.0, 27.0]"));
  EXPECT_EQ(j["best"], 1);
  EXPECT_EQ(j["valid_samples"], 3);
  EXPECT_EQ(j["abstentions"], 0);
  EXPECT_EQ(j["histogram"][1][8], 1);  // response 1 got one 9 (index 9 - 1)
}

TEST(CliVote, AbstentionsAndMeta) {
  const std::string in =
      "{\"scores\": [3, 9], \"meta\": 1.5}\n"
      "{\"valid\": false}\n"
      "{\"order\": [1, 0], \"scores\": [2, 8], \"meta\": -3}\n"
      "{\"scores\": [7, 4], \"meta\": 0.2}\n";
  auto r = run_grm("vote", in);
  ASSERT_EQ(r.rc, 0) << r.err;
  json j = json::parse(r.out);
  EXPECT_EQ(j["abstentions"], 1);
  EXPECT_EQ(j["rewards"], json::parse("[18.0, 15.0]"));  // (3+8+7, 9+2+4)
  r = run_grm("vote --aggregate meta --k-meta 2", in);
  ASSERT_EQ(r.rc, 0) << r.err;
  j = json::parse(r.out);
  EXPECT_EQ(j["kept"], 2);
  EXPECT_EQ(j["rewards"], json::parse("[10.0, 13.0]"));  // meta 1.5 and 0.2
  EXPECT_EQ(j["best"], 1);
}

TEST(CliVote, BadInputNamesTheLine) {
  struct Case {
    std::string args, input, needle;
  } cases[] = {
      {"vote", "{\"scores\": [1, 2]}\n{\"scores\": [1, 2\n", "stdin:2:"},
      {"vote", "{\"scores\": [1, 2]}\n{\"scores\": [\"a\", 2]}\n", "stdin:2:"},
      {"vote", "{\"scores\": [1, 2]}\n{\"scores\": [1, 2, 3]}\n", "stdin:2:"},
      {"vote", std::string("{\"scores\": [1, 2], \"x\": \"\xff\"}\n"), "stdin:1: invalid UTF-8"},
      {"vote", "{\"order\": [0, 0], \"scores\": [1, 2]}\n", "stdin:1:"},
      {"vote", "{\"scores\": [1, 11]}\n", "stdin:1:"},
      {"vote", "[1, 2]\n", "stdin:1:"},
      {"vote --aggregate meta", "{\"scores\": [1, 2]}\n", "stdin:1:"},
      {"vote --aggregate best", "{\"scores\": [1, 2]}\n", "unknown aggregate"},
      {"vote", "", "no samples"},
  };
  for (const auto& c : cases) {
    auto r = run_grm(c.args, c.input);
    EXPECT_EQ(r.rc, 2) << c.input;
    EXPECT_NE(r.err.find(c.needle), std::string::npos) << c.input << " → " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  }
}
