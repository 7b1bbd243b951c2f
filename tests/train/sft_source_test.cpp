// Training data from grm synth records: fresh response orders per example, gold targets that match them,
// a deterministic stream (what exact resume relies on), and the tokenizer corpus.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "core/parse.h"
#include "synth/synth.h"
#include "train/sft_data.h"
#include "train_test_util.h"

namespace {

struct Suite {
  std::string dir, path;
  std::vector<grm::synth::SynthRecord> records;
};

Suite write_suite(const std::string& name, int n) {
  Suite s;
  s.dir = train_test::temp_dir(name);
  s.path = s.dir + "/train.jsonl";
  s.records = grm::synth::generate_suite(grm::synth::Split::Train, n, 11);
  grm::synth::write_jsonl_atomic(s.records, s.path);
  return s;
}

}  // namespace

TEST(TrainSynthSource, ExamplesShowShuffledResponsesWithMatchingGoldScores) {
  const Suite s = write_suite("synth-src", 8);
  const auto src = grm::train::load_sft_source(s.path, 3);
  ASSERT_EQ(src->size(), 8u);
  constexpr int kEpochs = 16;
  std::map<std::string, std::set<std::string>> targets_by_query;
  std::map<std::string, int> seen;
  for (uint64_t i = 0; i < 8 * kEpochs; ++i) {
    const auto ex = src->example(i);
    const auto again = src->example(i);  // deterministic in the index
    EXPECT_EQ(ex.prompt, again.prompt);
    EXPECT_EQ(ex.target, again.target);
    const auto rec = std::find_if(s.records.begin(), s.records.end(), [&](const auto& r) {
      return ex.prompt.find(r.query) != std::string::npos;
    });
    ASSERT_NE(rec, s.records.end()) << ex.prompt;
    ++seen[rec->id];
    targets_by_query[rec->query].insert(ex.target);
    EXPECT_NE(ex.prompt.find("[The Begin of Response " + std::to_string(rec->n()) + "]"), std::string::npos);
    EXPECT_EQ(ex.target.rfind("Specific Criteria: ", 0), 0u) << ex.target;
    // The target's scores are the gold scores in the shown order: same multiset, parseable.
    const auto j = grm::parse_judgment(ex.target, rec->n(), rec->range());
    ASSERT_TRUE(j.valid) << j.error;
    auto got = j.scores, want = rec->scores;
    std::sort(got.begin(), got.end());
    std::sort(want.begin(), want.end());
    EXPECT_EQ(got, want);
  }
  for (const auto& r : s.records) EXPECT_EQ(seen[r.id], kEpochs) << r.id;  // each record once per epoch
  // Records with differently scored responses are shown in more than one order over the epochs.
  for (const auto& r : s.records) {
    if (r.n() >= 2 && std::set<int>(r.scores.begin(), r.scores.end()).size() > 1) {
      EXPECT_GT(targets_by_query[r.query].size(), 1u) << r.id;
    }
  }
  std::filesystem::remove_all(s.dir);
}

TEST(TrainSynthSource, TokenizerCorpusHasPromptsAndTargets) {
  const Suite s = write_suite("synth-corpus", 5);
  const auto texts = grm::train::tokenizer_corpus(s.path);
  ASSERT_EQ(texts.size(), 5u * 4);  // two orders × (prompt, target) per record
  EXPECT_NE(texts[0].find("#### Responses to be Scored ####"), std::string::npos);
  EXPECT_EQ(texts[1].rfind("Specific Criteria: ", 0), 0u);
  std::filesystem::remove_all(s.dir);
}
