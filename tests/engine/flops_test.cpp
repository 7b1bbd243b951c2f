// Matmul FLOP counts used by `grm bench`: checked against the weights a model of each config actually holds.
#include "engine/flops.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "engine/model.h"

using grm::engine::ModelConfig;

namespace {

ModelConfig load(const std::string& name) {
  return ModelConfig::load(std::string(GRM_TEST_DATA) + "/configs/" + name);
}

bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

// 2 × the elements of the block projections and of the head the model holds.
void expect_counts_match_weights(const ModelConfig& c) {
  grm::engine::Transformer m(c, torch::kFloat);
  double blocks = 0, head = 0;
  for (const auto& [name, w] : m.named_weights()) {
    if (ends_with(name, "_proj.weight")) blocks += 2.0 * static_cast<double>(w.numel());
    if (name == "lm_head.weight" || (c.tie_word_embeddings && name == "model.embed_tokens.weight"))
      head += 2.0 * static_cast<double>(w.numel());
  }
  EXPECT_GT(blocks, 0);
  EXPECT_DOUBLE_EQ(grm::engine::block_flops_per_token(c), blocks);
  EXPECT_DOUBLE_EQ(grm::engine::head_flops_per_token(c), head);
}

}  // namespace

TEST(Flops, BlockAndHeadCountsAreTheModelsWeights) {
  expect_counts_match_weights(load("tiny-llama.json"));
  expect_counts_match_weights(load("tiny-qwen2.json"));
  ModelConfig gqa = load("tiny-llama.json");  // fewer kv heads than query heads: k and v are smaller
  gqa.num_key_value_heads = 1;
  gqa.raw["num_key_value_heads"] = 1;
  expect_counts_match_weights(gqa);
}

TEST(Flops, AttentionCountsEveryQueryHeadAndStopsAtTheWindow) {
  ModelConfig c = load("tiny-llama.json");
  c.num_hidden_layers = 4, c.num_attention_heads = 4, c.num_key_value_heads = 2, c.head_dim = 64;
  // Per layer: scores q·k and the sum p·v, 64 multiply-adds each, for 4 query heads and 480 positions.
  EXPECT_DOUBLE_EQ(grm::engine::attention_flops_per_token(c, 480), 4 * (2 * 2.0 * 64 * 4 * 480));
  c.sliding_window = 100;
  EXPECT_DOUBLE_EQ(grm::engine::attention_flops_per_token(c, 480), grm::engine::attention_flops_per_token(c, 100));
  EXPECT_DOUBLE_EQ(grm::engine::attention_flops_per_token(c, 50), 4 * (2 * 2.0 * 64 * 4 * 50));
}

TEST(Flops, RequestBoundCountsPrefillBlocksAndWholeDecodeSteps) {
  const ModelConfig c = load("tiny-qwen2.json");
  const double blocks = grm::engine::block_flops_per_token(c), head = grm::engine::head_flops_per_token(c);
  const double attention = grm::engine::attention_flops_per_token(c, 30);
  EXPECT_DOUBLE_EQ(grm::engine::request_flops_lower_bound(c, 20, 0, 30), 20 * blocks);
  EXPECT_DOUBLE_EQ(grm::engine::decode_flops_per_token(c, 30), blocks + head + attention);
  EXPECT_DOUBLE_EQ(grm::engine::request_flops_lower_bound(c, 20, 5, 30), 20 * blocks + 5 * (blocks + head + attention));
}
