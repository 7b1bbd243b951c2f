#include "core/parse.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/rng.h"

namespace grm {
namespace {

const char* kCanonical =
    "Specific Criteria: Accuracy (Weight: 40%), Clarity (Weight: 30%), Completeness (Weight: 30%)\n"
    "Analysis: Response 1 is accurate but terse. Response 2 is thorough.\n"
    "Scores: \\boxed{7, 9}";

void expect_principle(const Principle& p, const std::string& text, std::optional<double> weight) {
  EXPECT_EQ(p.text, text);
  ASSERT_EQ(p.weight.has_value(), weight.has_value()) << p.text;
  if (weight) {
    EXPECT_DOUBLE_EQ(*p.weight, *weight) << p.text;
  }
}

std::string error_of(std::string_view text, int n, ScoreRange range = {}) {
  const Judgment j = parse_judgment(text, n, range);
  EXPECT_FALSE(j.valid) << text;
  EXPECT_TRUE(j.scores.empty());
  return j.error;
}

std::vector<int> scores_of(std::string_view text, int n, ScoreRange range = {}) {
  const Judgment j = parse_judgment(text, n, range);
  EXPECT_TRUE(j.valid) << j.error << "\n" << text;
  EXPECT_TRUE(j.error.empty());
  return j.scores;
}

TEST(Parse, Canonical) {
  const Judgment j = parse_judgment(kCanonical, 2);
  ASSERT_TRUE(j.valid) << j.error;
  EXPECT_EQ(j.scores, (std::vector<int>{7, 9}));
  EXPECT_EQ(j.critique, "Response 1 is accurate but terse. Response 2 is thorough.");
  ASSERT_EQ(j.principles.size(), 3u);
  expect_principle(j.principles[0], "Accuracy", 0.4);
  expect_principle(j.principles[1], "Clarity", 0.3);
  expect_principle(j.principles[2], "Completeness", 0.3);
}

TEST(Parse, MarkdownWrappedScores) {
  const std::string text =
      "**Specific Criteria:**\n"
      "- **Helpfulness** (Weight: 50%)\n"
      "- **Harmlessness** (Weight: 50%)\n\n"
      "**Analysis:** Both are fine.\n\n"
      "**Scores: \\boxed{8, 8}**";
  const Judgment j = parse_judgment(text, 2);
  ASSERT_TRUE(j.valid) << j.error;
  EXPECT_EQ(j.scores, (std::vector<int>{8, 8}));
  EXPECT_EQ(j.critique, "Both are fine.");
  ASSERT_EQ(j.principles.size(), 2u);
  expect_principle(j.principles[0], "Helpfulness", 0.5);
  expect_principle(j.principles[1], "Harmlessness", 0.5);
  EXPECT_EQ(scores_of("Analysis: ok\n**Scores**: \\boxed{3, 4}", 2), (std::vector<int>{3, 4}));
  EXPECT_EQ(scores_of("Analysis: ok\nScores: $\\boxed{3, 4}$", 2), (std::vector<int>{3, 4}));
}

TEST(Parse, OutputHeadingAndHeadersWithoutColons) {
  const Judgment j = parse_judgment(std::string("### Output:\n") + kCanonical + "\n", 2);
  ASSERT_TRUE(j.valid) << j.error;
  EXPECT_EQ(j.scores, (std::vector<int>{7, 9}));
  EXPECT_EQ(j.principles.size(), 3u);
  EXPECT_EQ(j.critique, "Response 1 is accurate but terse. Response 2 is thorough.");

  const Judgment h = parse_judgment(
      "## Specific Criteria\n- Correctness (Weight: 100%)\n## Analysis\nLooks right.\n## Scores\n\\boxed{3, 4}\n", 2);
  ASSERT_TRUE(h.valid) << h.error;
  EXPECT_EQ(h.scores, (std::vector<int>{3, 4}));
  EXPECT_EQ(h.critique, "Looks right.");
  ASSERT_EQ(h.principles.size(), 1u);
  expect_principle(h.principles[0], "Correctness", 1.0);
}

TEST(Parse, LastBoxWins) {
  EXPECT_EQ(scores_of("Scores: \\boxed{5, 5}\nWait, correcting: \\boxed{6, 7}", 2), (std::vector<int>{6, 7}));
  EXPECT_EQ(scores_of("Analysis: I might give \\boxed{1, 1}.\nScores: \\boxed{8, 9}", 2), (std::vector<int>{8, 9}));
  // An unfinished box after a complete one is ignored.
  EXPECT_EQ(scores_of("Scores: \\boxed{8, 9} \\boxed{3,", 2), (std::vector<int>{8, 9}));
  // The last Scores header that starts a line beats a later mention inside a sentence.
  EXPECT_EQ(scores_of("Scores: \\boxed{2, 3}\nNote the Scores: above are final.", 2), (std::vector<int>{2, 3}));
  // The per-response "Score:" lines inside the analysis do not hide the final box.
  EXPECT_EQ(scores_of("Analysis:\nResponse 1\nScore: 8\nResponse 2\nScore: 7\nScores: \\boxed{8, 7}", 2),
            (std::vector<int>{8, 7}));
}

TEST(Parse, SpacesAndFullWidthCommas) {
  EXPECT_EQ(scores_of("Scores:  \\boxed{ 8 \xEF\xBC\x8C" "9 ,\t 10 }", 3), (std::vector<int>{8, 9, 10}));
  EXPECT_EQ(scores_of("Scores\xEF\xBC\x9A\\boxed{8\xEF\xBC\x8C" "9}", 2), (std::vector<int>{8, 9}));
  EXPECT_EQ(scores_of("Scores: \\boxed{\n  8,\n  9\n}", 2), (std::vector<int>{8, 9}));
  EXPECT_EQ(scores_of("SCORES : \\boxed{+7, 005}", 2), (std::vector<int>{7, 5}));
}

TEST(Parse, FallbackWithoutScoresHeader) {
  const Judgment j = parse_judgment("Specific Criteria: A (40%); B (60%)\nAnalysis: good.\nFinal: \\boxed{7, 8}", 2);
  ASSERT_TRUE(j.valid) << j.error;
  EXPECT_EQ(j.scores, (std::vector<int>{7, 8}));
  EXPECT_EQ(j.critique, "good.\nFinal:");
  ASSERT_EQ(j.principles.size(), 2u);
  expect_principle(j.principles[0], "A", 0.4);
  expect_principle(j.principles[1], "B", 0.6);
  EXPECT_EQ(scores_of("\\boxed{4}", 1), (std::vector<int>{4}));
}

TEST(Parse, NoPrinciplesIsValid) {
  const Judgment j = parse_judgment("Analysis: fine\nScores: \\boxed{5, 6}", 2);
  ASSERT_TRUE(j.valid) << j.error;
  EXPECT_TRUE(j.principles.empty());
  EXPECT_EQ(j.critique, "fine");
  const Judgment bare = parse_judgment("Scores: \\boxed{5, 6}", 2);
  ASSERT_TRUE(bare.valid);
  EXPECT_TRUE(bare.principles.empty());
  EXPECT_EQ(bare.critique, "");
}

TEST(Parse, ErrorEmptyOutput) {
  EXPECT_EQ(error_of("", 2), "empty output");
  EXPECT_EQ(error_of(" \n\t\r\n", 2), "empty output");
}

TEST(Parse, ErrorNoBoxedScores) {
  EXPECT_EQ(error_of("Specific Criteria: x\nAnalysis: y\nScores: 8, 9", 2), "no boxed scores");
  EXPECT_EQ(error_of("Analysis: y\nScores: \\boxed{8, 9", 2), "no boxed scores");
  // A box before the (truncated) Scores line is not trusted.
  EXPECT_EQ(error_of("Analysis: maybe \\boxed{8, 9}\nScores: \\boxed{8,", 2), "no boxed scores");
  EXPECT_EQ(error_of("just text } with a brace", 2), "no boxed scores");
}

TEST(Parse, ErrorWrongCount) {
  EXPECT_EQ(error_of("Scores: \\boxed{8}", 2), "wrong count: expected 2, got 1");
  EXPECT_EQ(error_of("Scores: \\boxed{8, 7, 6}", 2), "wrong count: expected 2, got 3");
  EXPECT_EQ(error_of("Scores: \\boxed{}", 2), "wrong count: expected 2, got 0");
  EXPECT_EQ(error_of("Scores: \\boxed{  }", 1), "wrong count: expected 1, got 0");
  EXPECT_EQ(error_of("Scores: \\boxed{8 7}", 2), "wrong count: expected 2, got 1");
  // The count is checked before the values.
  EXPECT_EQ(error_of("Scores: \\boxed{x}", 2), "wrong count: expected 2, got 1");
}

TEST(Parse, ErrorNonInteger) {
  EXPECT_EQ(error_of("Scores: \\boxed{8, 7.5}", 2), "non-integer score '7.5'");
  EXPECT_EQ(error_of("Scores: \\boxed{8, eight}", 2), "non-integer score 'eight'");
  EXPECT_EQ(error_of("Scores: \\boxed{8, }", 2), "non-integer score ''");
  EXPECT_EQ(error_of("Scores: \\boxed{8/10, 7}", 2), "non-integer score '8/10'");
  EXPECT_EQ(error_of("Scores: \\boxed{-, 7}", 2), "non-integer score '-'");
  const std::string long_token(100, 'x');
  EXPECT_EQ(error_of("Scores: \\boxed{" + long_token + "}", 1), "non-integer score '" + long_token.substr(0, 40) + "...'");
}

TEST(Parse, ErrorOutOfRange) {
  EXPECT_EQ(error_of("Scores: \\boxed{8, 11}", 2), "score 11 out of range [1, 10]");
  EXPECT_EQ(error_of("Scores: \\boxed{0, 5}", 2), "score 0 out of range [1, 10]");
  EXPECT_EQ(error_of("Scores: \\boxed{-3, 5}", 2), "score -3 out of range [1, 10]");
  EXPECT_EQ(error_of("Scores: \\boxed{99999999999999999999999, 5}", 2),
            "score 99999999999999999999999 out of range [1, 10]");
}

TEST(Parse, InvalidJudgmentKeepsPrinciplesAndCritique) {
  const Judgment j = parse_judgment("Specific Criteria: A (Weight: 100%)\nAnalysis: meh\nScores: \\boxed{12}", 1);
  EXPECT_FALSE(j.valid);
  EXPECT_EQ(j.error, "score 12 out of range [1, 10]");
  EXPECT_EQ(j.critique, "meh");
  ASSERT_EQ(j.principles.size(), 1u);
  expect_principle(j.principles[0], "A", 1.0);
}

TEST(Parse, SingleResponseBinaryRange) {
  const ScoreRange binary{0, 1};
  EXPECT_EQ(scores_of("Analysis: correct.\nScores: \\boxed{1}", 1, binary), (std::vector<int>{1}));
  EXPECT_EQ(scores_of("Analysis: wrong.\nScore: \\boxed{0}", 1, binary), (std::vector<int>{0}));
  EXPECT_EQ(error_of("Scores: \\boxed{2}", 1, binary), "score 2 out of range [0, 1]");
  EXPECT_EQ(error_of("Scores: \\boxed{-1}", 1, binary), "score -1 out of range [0, 1]");
}

TEST(Parse, WeightForms) {
  const Judgment j = parse_judgment(
      "Specific Criteria:\n"
      "1. **Accuracy (Weight: 40%)**: facts must be right.\n"
      "2. Clarity (weight 25%)\n"
      "- Depth (20%)\n"
      "* Safety - Weight: 0.1\n"
      "3) Style (Weight: 5)\n"
      "+ Brevity (4% weight)\n"
      "4. Tone (friendly)\n"
      "Analysis: ok\nScores: \\boxed{1, 2}",
      2);
  ASSERT_TRUE(j.valid) << j.error;
  ASSERT_EQ(j.principles.size(), 7u);
  expect_principle(j.principles[0], "Accuracy: facts must be right", 0.4);
  expect_principle(j.principles[1], "Clarity", 0.25);
  expect_principle(j.principles[2], "Depth", 0.2);
  expect_principle(j.principles[3], "Safety", 0.1);
  expect_principle(j.principles[4], "Style", 0.05);
  expect_principle(j.principles[5], "Brevity", 0.04);
  expect_principle(j.principles[6], "Tone (friendly)", std::nullopt);
}

TEST(Parse, PrincipleLists) {
  // Indented or unmarked lines continue the item above; a preamble before the first item is dropped.
  const Judgment nested = parse_judgment(
      "Specific Criteria:\nHere are the criteria:\n"
      "1. Accuracy (Weight: 60%)\n   - every fact is checked\n"
      "2. Clarity (Weight: 40%)\n\nAnalysis: ok\nScores: \\boxed{1}",
      1);
  ASSERT_EQ(nested.principles.size(), 2u);
  expect_principle(nested.principles[0], "Accuracy every fact is checked", 0.6);
  expect_principle(nested.principles[1], "Clarity", 0.4);

  // Unmarked lines are one principle each; a comma inside an item does not split it.
  const Judgment lines = parse_judgment(
      "Specific Criteria:\n**Facts, dates and names (Weight: 70%)**\nTone (Weight: 30%)\nAnalysis: ok", 1);
  ASSERT_EQ(lines.principles.size(), 2u);
  expect_principle(lines.principles[0], "Facts, dates and names", 0.7);
  expect_principle(lines.principles[1], "Tone", 0.3);

  const Judgment one = parse_judgment(
      "Specific Criteria: Facts, dates and names (Weight: 70%)\xEF\xBC\x8C Tone (30%).\nAnalysis: ok", 1);
  ASSERT_EQ(one.principles.size(), 2u);
  expect_principle(one.principles[0], "Facts, dates and names", 0.7);
  expect_principle(one.principles[1], "Tone", 0.3);

  const Judgment numbered = parse_judgment("Specific Criteria: 1. A (Weight: 40%) 2. B, C (60%) 3.5 D\nAnalysis:", 1);
  ASSERT_EQ(numbered.principles.size(), 2u);
  expect_principle(numbered.principles[0], "A", 0.4);
  expect_principle(numbered.principles[1], "B, C 3.5 D", 0.6);
}

// ---- robustness -----------------------------------------------------------------------------------

void check_invariants(const std::string& text, int n, ScoreRange range = {}) {
  Judgment j;
  ASSERT_NO_THROW(j = parse_judgment(text, n, range));
  if (j.valid) {
    ASSERT_TRUE(j.error.empty());
    ASSERT_EQ(j.scores.size(), static_cast<size_t>(n));
    for (int s : j.scores) {
      ASSERT_TRUE(range.contains(s)) << s;
    }
  } else {
    ASSERT_FALSE(j.error.empty());
    ASSERT_TRUE(j.scores.empty());
  }
}

TEST(Parse, RandomBytes) {
  Rng rng(20240601);
  for (int it = 0; it < 20000; ++it) {
    std::string s(rng.below(2049), '\0');
    for (char& c : s) c = static_cast<char>(rng.below(256));
    check_invariants(s, 1 + static_cast<int>(rng.below(4)));
    if (HasFatalFailure()) return;
  }
}

TEST(Parse, MutatedValidOutputs) {
  const std::vector<std::pair<std::string, int>> bases = {
      {kCanonical, 2},
      {"### Output:\n**Specific Criteria:**\n1. **Accuracy (Weight: 40%)**: right.\n- Tone (60%)\n\n"
       "**Analysis:** Both fine.\n\n**Scores: \\boxed{8, 8, 3}**",
       3},
      {"Specific Criteria: A (40%); B (60%)\nAnalysis: ok.\nScores: \\boxed{10}", 1},
  };
  const std::vector<std::string> inserts = {"\\boxed{", "}", ",", "\xEF\xBC\x8C", "1", "7", "10", "-", "Scores:",
                                            "Analysis:", "(", ")", "Weight: ", "%", "\n", std::string(1, '\0')};
  Rng rng(7);
  int valid = 0;
  for (int it = 0; it < 20000; ++it) {
    const auto& [base, n] = bases[rng.below(bases.size())];
    std::string s = base;
    const int edits = 1 + static_cast<int>(rng.below(6));
    for (int e = 0; e < edits; ++e) {
      const size_t pos = rng.below(s.size() + 1);
      switch (rng.below(4)) {
        case 0:
          if (pos < s.size()) s[pos] = static_cast<char>(rng.below(256));
          break;
        case 1: s.resize(pos); break;
        case 2: s.insert(pos, inserts[rng.below(inserts.size())]); break;
        default: s.erase(pos, rng.below(8)); break;
      }
    }
    check_invariants(s, n);
    if (HasFatalFailure()) return;
    valid += parse_judgment(s, n).valid;
  }
  EXPECT_GT(valid, 1000);  // the mutations exercise the valid path too
}

std::string repeat(std::string_view piece, size_t bytes) {
  std::string s;
  s.reserve(bytes + piece.size());
  while (s.size() < bytes) s.append(piece);
  return s;
}

// Adversarial 4 MB inputs: a quadratic scan would take minutes; these return in milliseconds.
TEST(Parse, LinearOnAdversarialInputs) {
  const size_t mb4 = 4u << 20;
  EXPECT_EQ(error_of(repeat("\\boxed{", mb4), 2), "no boxed scores");
  EXPECT_EQ(error_of(repeat("Scores: ", mb4), 2), "no boxed scores");
  EXPECT_EQ(error_of(repeat("\n**Scores**", mb4), 2), "no boxed scores");
  EXPECT_EQ(error_of(repeat("Scores: \\boxed{", mb4) + "}", 2), "wrong count: expected 2, got 0");
  EXPECT_EQ(error_of(repeat("\\boxed{1,", mb4) + "}", 3), "wrong count: expected 3, got 2");
  EXPECT_EQ(error_of("\\boxed{" + repeat("1,", mb4) + "1}", 3),
            "wrong count: expected 3, got " + std::to_string(mb4 / 2 + 1));
  EXPECT_EQ(error_of(repeat(" ", mb4) + "x" + repeat("*", mb4), 1), "no boxed scores");
  EXPECT_EQ(error_of(repeat("}", mb4), 1), "no boxed scores");

  for (const char* piece : {"(", ")", "(Weight ", "weight weight ", "Specific Criteria:", "criteria",
                            "Analysis:", "1. ", "- (", "\n  - x", "; ", "(40%) ,", "\xEF\xBC\x8C", "*"}) {
    const Judgment j = parse_judgment("Specific Criteria: " + repeat(piece, mb4), 2);
    EXPECT_FALSE(j.valid) << piece;
    EXPECT_EQ(j.error, "no boxed scores") << piece;
  }
  const Judgment many = parse_judgment("Specific Criteria: " + repeat("a (Weight: 40%), ", mb4), 2);
  EXPECT_EQ(many.error, "no boxed scores");
  EXPECT_EQ(many.principles.size(), (mb4 + 16) / 17);
}

}  // namespace
}  // namespace grm
