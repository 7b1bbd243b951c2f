// Batching and the masked loss: only target tokens (and the eos) are trained on.
#include "train/sft_data.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "train/trainer.h"
#include "train_test_util.h"

using grm::train::kIgnore;
using grm::train::TokenizedExample;

TEST(TrainBatch, MasksPromptAndPadding) {
  const std::vector<TokenizedExample> ex = {{{10, 11, 12, 13, 14}, 2}, {{20, 21, 22}, 1}};
  const auto b = grm::train::make_batch(ex);
  ASSERT_EQ(b.inputs.sizes(), (std::vector<int64_t>{2, 4}));
  const std::vector<int64_t> in0 = {10, 11, 12, 13}, lab0 = {kIgnore, 12, 13, 14};
  const std::vector<int64_t> in1 = {20, 21, 0, 0}, lab1 = {21, 22, kIgnore, kIgnore};
  for (int64_t t = 0; t < 4; ++t) {
    EXPECT_EQ(b.inputs[0][t].item<int64_t>(), in0[t]);
    EXPECT_EQ(b.labels[0][t].item<int64_t>(), lab0[t]);
    EXPECT_EQ(b.inputs[1][t].item<int64_t>(), in1[t]);
    EXPECT_EQ(b.labels[1][t].item<int64_t>(), lab1[t]);
  }
  EXPECT_EQ(b.real_tokens, 6);
  EXPECT_EQ(b.target_tokens, 5);
}

TEST(TrainBatch, TokenizeAppendsEosAfterTarget) {
  auto tok = train_test::byte_tokenizer();
  const auto e = grm::train::tokenize_example(*tok, {"ab", "c"}, 256);
  EXPECT_EQ(e.tokens, (std::vector<int64_t>{'a', 'b', 'c', 256}));
  EXPECT_EQ(e.prompt_len, 2);
}

TEST(TrainLoss, MaskedLossMatchesManualComputation) {
  torch::manual_seed(3);
  const auto logits = torch::randn({2, 4, 7});
  const std::vector<TokenizedExample> ex = {{{1, 2, 3, 4, 5}, 2}, {{6, 0, 3}, 1}};
  const auto b = grm::train::make_batch(ex);
  const double got = grm::train::masked_lm_loss(logits, b.labels).item<double>();
  // By hand: -log softmax at the target token, averaged over the 5 target positions only.
  const auto lp = torch::log_softmax(logits, -1);
  const double manual = -(lp[0][1][3] + lp[0][2][4] + lp[0][3][5] + lp[1][0][0] + lp[1][1][3]).item<double>() / 5;
  EXPECT_NEAR(got, manual, 1e-6);
  // Changing the logits at prompt or padding positions leaves the loss unchanged.
  auto other = logits.clone();
  other[0][0].fill_(5.0);
  other[1][2].fill_(-3.0);
  other[1][3].normal_();
  EXPECT_NEAR(grm::train::masked_lm_loss(other, b.labels).item<double>(), got, 1e-6);
}

TEST(TrainLoss, PromptPositionsGetNoGradient) {
  auto model = train_test::tiny_model();
  auto tok = train_test::byte_tokenizer();
  const auto e = grm::train::tokenize_example(*tok, {"prompt text", "xy"}, 256);
  const auto b = grm::train::make_batch({e});
  auto logits = model->forward(b.inputs);
  logits.retain_grad();
  grm::train::masked_lm_loss(logits, b.labels).backward();
  const auto g = logits.grad()[0].abs().sum(-1);  // [T]
  const int64_t T = g.size(0), first_target = e.prompt_len - 1;
  ASSERT_EQ(T, static_cast<int64_t>(e.tokens.size()) - 1);
  for (int64_t t = 0; t < T; ++t) {
    if (t < first_target) EXPECT_EQ(g[t].item<double>(), 0.0) << "position " << t;
    else EXPECT_GT(g[t].item<double>(), 0.0) << "position " << t;
  }
  EXPECT_EQ(b.target_tokens, 3);  // 'x', 'y', eos
}

TEST(TrainLr, WarmupThenCosine) {
  grm::train::TrainOptions o;
  o.lr = 1.0;
  o.warmup = 4;
  o.steps = 14;
  o.min_lr_ratio = 0.1;
  EXPECT_DOUBLE_EQ(grm::train::lr_at(o, 0), 0.25);
  EXPECT_DOUBLE_EQ(grm::train::lr_at(o, 3), 1.0);
  EXPECT_DOUBLE_EQ(grm::train::lr_at(o, 4), 1.0);
  EXPECT_NEAR(grm::train::lr_at(o, 9), 0.55, 1e-12);
  EXPECT_NEAR(grm::train::lr_at(o, 14), 0.1, 1e-12);
  EXPECT_NEAR(grm::train::lr_at(o, 100), 0.1, 1e-12);
}
