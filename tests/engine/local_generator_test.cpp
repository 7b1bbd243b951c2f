#include "engine/local_generator.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "engine/config.h"
#include "engine/worker_pool.h"

using namespace grm;
using namespace grm::engine;

namespace {

// Test double: one token per byte (ids 0..255) and an end token 256.
class ByteTokenizer : public Tokenizer {
 public:
  std::vector<int> encode(std::string_view text) const override {
    std::vector<int> ids;
    for (unsigned char c : text) ids.push_back(c);
    return ids;
  }
  std::string token_bytes(int id) const override { return id < 256 ? std::string(1, static_cast<char>(id)) : "<|end|>"; }
  int vocab_size() const override { return 257; }
  std::optional<int> bos_id() const override { return std::nullopt; }
  std::optional<int> eos_id() const override { return 256; }
  std::optional<int> token_to_id(std::string_view) const override { return std::nullopt; }
};

std::unique_ptr<LocalGenerator> make_generator(c10::ScalarType dtype = c10::kFloat, int max_batch = 64,
                                               double std = 0.5, bool share_prompt_prefixes = true) {
  ModelConfig cfg = ModelConfig::load(std::string(GRM_TEST_DATA) + "/configs/tiny-llama.json");
  cfg.vocab_size = 257;
  cfg.eos_token_ids = {256};
  auto model = std::make_shared<Transformer>(cfg, dtype);
  model->init_random(3, std);  // a large std gives peaked, varied distributions
  model->pack_linear_weights();  // as LocalGenerator::open does (float32 on AVX2 CPUs)
  EngineOptions opt;
  opt.dtype = dtype;
  opt.max_batch = max_batch;
  opt.share_prompt_prefixes = share_prompt_prefixes;
  return std::make_unique<LocalGenerator>(model, std::make_shared<ByteTokenizer>(), opt);
}

GenerationRequest req(std::string prompt, int n, uint64_t seed, int max_tokens = 12, double t = 1.0) {
  GenerationRequest r;
  r.prompt = std::move(prompt);
  r.n = n;
  r.params.temperature = t;
  r.params.max_tokens = max_tokens;
  r.params.seed = seed;
  return r;
}

}  // namespace

TEST(LocalGenerator, SameSeedSameOutputAndSamplesDiffer) {
  auto g = make_generator();
  auto a = g->generate({req("hello judge", 6, 42)});
  auto b = g->generate({req("hello judge", 6, 42)});
  ASSERT_EQ(a[0].size(), 6u);
  std::set<std::string> distinct;
  for (size_t j = 0; j < 6; ++j) {
    EXPECT_EQ(a[0][j].text, b[0][j].text);
    distinct.insert(a[0][j].text);
  }
  EXPECT_GT(distinct.size(), 1u) << "sampling at T=1 should vary between samples";
  auto c = g->generate({req("hello judge", 6, 43)});
  int same = 0;
  for (size_t j = 0; j < 6; ++j) same += a[0][j].text == c[0][j].text;
  EXPECT_LT(same, 6);
}

TEST(LocalGenerator, AnySampleReproducesAloneAndInsideOtherBatches) {
  auto g = make_generator();
  auto full = g->generate({req("abc", 8, 7)});
  for (int j : {0, 3, 7}) {
    GenerationRequest one = req("abc", 1, 7);
    one.first_index = j;
    // Alone, and mixed with unrelated requests of other lengths.
    auto alone = g->generate({one});
    auto mixed = g->generate({req("a much longer prompt here", 5, 1), one, req("x", 3, 2)});
    EXPECT_EQ(alone[0][0].text, full[0][static_cast<size_t>(j)].text) << j;
    EXPECT_EQ(mixed[1][0].text, full[0][static_cast<size_t>(j)].text) << j;
  }
}

// 36 rows of 257 logits are enough for a step's draws to run on the worker pool: each sequence's draws use its
// own generator, so the samples are those of one thread, and of each sample drawn alone (serially).
TEST(LocalGenerator, DrawsOnThePoolGiveTheSamplesOfOneThread) {
  auto g = make_generator();
  const std::vector<GenerationRequest> batch{req("first prompt", 20, 5, 16), req("second", 16, 6, 16)};
  grm::engine::set_worker_threads(1);
  const auto serial = g->generate(batch);
  grm::engine::set_worker_threads(2);
  const auto pooled = g->generate(batch);
  grm::engine::set_worker_threads(0);
  for (size_t r = 0; r < batch.size(); ++r) {
    ASSERT_EQ(pooled[r].size(), serial[r].size());
    for (size_t j = 0; j < serial[r].size(); ++j) EXPECT_EQ(pooled[r][j].text, serial[r][j].text) << r << " " << j;
  }
  GenerationRequest one = req("second", 1, 6, 16);
  one.first_index = 11;
  EXPECT_EQ(g->generate({one})[0][0].text, pooled[1][11].text);
}

TEST(LocalGenerator, SmallBatchesGiveTheSameResult) {
  auto big = make_generator(c10::kFloat, 64)->generate({req("p1", 5, 1), req("prompt two", 4, 2)});
  auto small = make_generator(c10::kFloat, 3)->generate({req("p1", 5, 1), req("prompt two", 4, 2)});
  for (size_t r = 0; r < 2; ++r)
    for (size_t j = 0; j < big[r].size(); ++j) EXPECT_EQ(big[r][j].text, small[r][j].text);
}

TEST(LocalGenerator, PromptsThatBeginAlikeComputeTheirCommonBeginningOnce) {
  // Like a record's permutations: a long common head, different tails; one prompt is the head alone (its last
  // position must still be computed), one extends another (which is itself a reuser: a second level), and
  // one shares nothing. Seeds differ per request; T = 1 makes any change in the logits likely to show.
  const std::string head(60, 'h');
  const std::vector<GenerationRequest> reqs = {
      req(head + "first tail", 3, 1),       req(head + "second", 3, 2), req(head, 2, 3),
      req(head + "first tail, more", 2, 4), req("unrelated", 2, 5),     req(head + "first tail, more!!", 2, 6)};
  auto shared = make_generator();
  auto plain = make_generator(c10::kFloat, 64, 0.5, false);
  const auto a = shared->generate(reqs), b = plain->generate(reqs);
  for (size_t r = 0; r < reqs.size(); ++r)
    for (size_t j = 0; j < a[r].size(); ++j) {
      EXPECT_EQ(a[r][j].text, b[r][j].text) << r << " " << j;
      EXPECT_EQ(a[r][j].prompt_tokens, b[r][j].prompt_tokens);
    }
  // Computed: "first tail" whole (70), then 6 of "second" (60 from the first), 1 of the head alone (59 from
  // the first), 6 of ", more" (70 from the first), 2 of "!!" (76 from ", more"), and "unrelated" whole.
  EXPECT_EQ(shared->stats().prefill_tokens, 70 + 6 + 1 + 6 + 2 + 9);
  EXPECT_EQ(plain->stats().prefill_tokens, 70 + 66 + 60 + 76 + 9 + 78);
  // Below 16 common tokens a prompt is computed whole.
  shared->reset_stats();
  shared->generate({req("fifteen chars..A", 1, 1), req("fifteen chars..B", 1, 1)});
  EXPECT_EQ(shared->stats().prefill_tokens, 32);
}

TEST(LocalGenerator, PrefixIsPrefilledOncePerDistinctPrompt) {
  auto g = make_generator();
  const std::string prompt(100, 'q');
  g->generate({req(prompt, 8, 1, 4), req("other", 8, 1, 4), req(prompt, 4, 9, 4)});
  EXPECT_EQ(g->stats().sequences, 20);
  EXPECT_EQ(g->stats().prefill_tokens, 100 + 5);  // each distinct prompt once
  EXPECT_EQ(g->stats().prompt_tokens_naive, 12 * 100 + 8 * 5);
}

TEST(LocalGenerator, GreedyIsDeterministicAcrossSeedsAndMaxTokensHolds) {
  auto g = make_generator();
  auto a = g->generate({req("greedy", 3, 1, 10, 0.0)});
  auto b = g->generate({req("greedy", 1, 99, 10, 0.0)});
  for (const auto& c : a[0]) {
    EXPECT_EQ(c.text, b[0][0].text);
    EXPECT_LE(c.completion_tokens, 10);
    if (c.finish_reason == "length") {
      EXPECT_EQ(c.completion_tokens, 10);
    }
  }
}

TEST(LocalGenerator, StopStringsCutTheText) {
  auto g = make_generator();
  auto free_run = g->generate({req("stop test", 1, 5, 30, 0.0)})[0][0];
  ASSERT_GE(free_run.text.size(), 4u);
  GenerationRequest r = req("stop test", 1, 5, 30, 0.0);
  r.params.stop = {free_run.text.substr(2, 2)};
  auto cut = g->generate({r})[0][0];
  EXPECT_EQ(cut.finish_reason, "stop");
  EXPECT_EQ(cut.text, free_run.text.substr(0, free_run.text.find(r.params.stop[0])));
}

TEST(LocalGenerator, TopKOneIsGreedy) {
  auto g = make_generator();
  GenerationRequest r = req("topk", 4, 11, 10, 1.5);
  r.params.top_k = 1;
  auto greedy = g->generate({req("topk", 1, 0, 10, 0.0)})[0][0].text;
  const auto top1 = g->generate({r});
  for (const auto& c : top1[0]) EXPECT_EQ(c.text, greedy);
  r.params.top_k = 0;
  r.params.top_p = 1e-9;  // nucleus of one token
  const auto nucleus = g->generate({r});
  for (const auto& c : nucleus[0]) EXPECT_EQ(c.text, greedy);
}

TEST(LocalGenerator, ContextLimitsArePerRequest) {
  auto g = make_generator();  // context 512, one token per byte
  const std::string too_long(600, 'x'), near_end(500, 'y');
  const auto out = g->generate({req(too_long, 2, 0), req("fine", 2, 1), req(near_end, 1, 2, 1 << 20, 1.0)});
  ASSERT_EQ(out.size(), 3u);
  ASSERT_EQ(out[0].size(), 2u);
  for (const auto& c : out[0]) {
    EXPECT_EQ(c.finish_reason, "error");
    EXPECT_NE(c.error.find("600 tokens does not fit the model's context of 512"), std::string::npos) << c.error;
    EXPECT_TRUE(c.text.empty());
  }
  // The other requests of the same call run; they match the same requests run alone.
  const auto alone = g->generate({req("fine", 2, 1)});
  for (size_t j = 0; j < 2; ++j) {
    EXPECT_TRUE(out[1][j].error.empty());
    EXPECT_EQ(out[1][j].text, alone[0][j].text);
  }
  // max_tokens past the context: generation stops where the context ends.
  EXPECT_TRUE(out[2][0].error.empty());
  if (out[2][0].finish_reason == "length") {
    EXPECT_EQ(out[2][0].completion_tokens, 12);
  }
  GenerationRequest ignore_eos = req(near_end, 1, 2, 1 << 20, 1.0);
  ignore_eos.params.ignore_eos = true;
  const auto capped = g->generate({ignore_eos});
  EXPECT_EQ(capped[0][0].finish_reason, "length");
  EXPECT_EQ(capped[0][0].completion_tokens, 512 - 500);
}

TEST(LocalGenerator, Bf16RunsAndIsDeterministic) {
  auto g = make_generator(c10::kBFloat16);
  auto a = g->generate({req("bf16 prompt", 4, 3)});
  auto b = g->generate({req("bf16 prompt", 4, 3)});
  for (size_t j = 0; j < 4; ++j) EXPECT_EQ(a[0][j].text, b[0][j].text);
}

// open() gives a float32 model packed weights where the CPU has the kernel, unless told not to; bf16 never.
// Greedy decoding of the bundled model reads the same text either way on this prompt (the products round
// differently, far below its top-logit gaps).
TEST(LocalGenerator, OpenPacksFloat32WeightsUnlessTurnedOff) {
  const std::string dir = std::string(GRM_SOURCE_DIR) + "/models/grm-tiny";
  EngineOptions opt;
  opt.dtype = c10::kFloat;
  auto packed = LocalGenerator::open(dir, opt);
  EXPECT_EQ(packed->model().weights_packed(), grm::engine::packed_kernel_available());
  EXPECT_EQ(packed->model().originals_released(), grm::engine::packed_kernel_available());
  opt.pack_weights = false;
  auto plain = LocalGenerator::open(dir, opt);
  EXPECT_FALSE(plain->model().weights_packed());
  auto r = req("What is 2 + 2? Judge the answer 4.", 1, 1, 16, 0.0);
  EXPECT_EQ(packed->generate({r})[0][0].text, plain->generate({r})[0][0].text);
  opt.pack_weights = true;
  opt.dtype = c10::kBFloat16;
  EXPECT_FALSE(LocalGenerator::open(dir, opt)->model().weights_packed());
}
