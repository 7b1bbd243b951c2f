#include "train/sft_data.h"

#include <algorithm>

#include <torch/torch.h>

#include "core/error.h"

namespace grm::train {

ListSource::ListSource(std::vector<SftExample> examples) : examples_(std::move(examples)) {
  if (examples_.empty()) throw Error("no training examples");
}

TokenizedExample tokenize_example(const engine::Tokenizer& tok, const SftExample& ex, int64_t eos_id) {
  TokenizedExample out;
  // Prompt and target are encoded apart, as at inference (the generator encodes the prompt, then samples).
  for (int id : tok.encode(ex.prompt)) out.tokens.push_back(id);
  out.prompt_len = static_cast<int64_t>(out.tokens.size());
  for (int id : tok.encode(ex.target)) out.tokens.push_back(id);
  out.tokens.push_back(eos_id);
  if (out.prompt_len == 0) throw Error("empty prompt in a training example");
  return out;
}

Batch make_batch(const std::vector<TokenizedExample>& examples) {
  if (examples.empty()) throw Error("make_batch: no examples");
  const auto B = static_cast<int64_t>(examples.size());
  int64_t T = 1;
  for (const auto& e : examples) T = std::max<int64_t>(T, static_cast<int64_t>(e.tokens.size()) - 1);
  Batch batch;
  batch.inputs = torch::zeros({B, T}, torch::kLong);
  batch.labels = torch::full({B, T}, kIgnore, torch::kLong);
  auto in = batch.inputs.accessor<int64_t, 2>();
  auto lab = batch.labels.accessor<int64_t, 2>();
  for (int64_t b = 0; b < B; ++b) {
    const auto& tokens = examples[static_cast<size_t>(b)].tokens;
    const auto n = static_cast<int64_t>(tokens.size());
    if (n < 2) throw Error("make_batch: an example needs at least two tokens");
    for (int64_t t = 0; t + 1 < n; ++t) {
      in[b][t] = tokens[static_cast<size_t>(t)];
      ++batch.real_tokens;
      // Position t predicts token t + 1; it is trained on when that token belongs to the target.
      if (t + 1 >= examples[static_cast<size_t>(b)].prompt_len) {
        lab[b][t] = tokens[static_cast<size_t>(t + 1)];
        ++batch.target_tokens;
      }
    }
  }
  return batch;
}

at::Tensor masked_lm_loss(const at::Tensor& logits, const at::Tensor& labels, int64_t normalizer) {
  const int64_t V = logits.size(-1);
  namespace F = torch::nn::functional;
  if (normalizer <= 0)
    return F::cross_entropy(logits.reshape({-1, V}), labels.reshape({-1}),
                            F::CrossEntropyFuncOptions().ignore_index(kIgnore).reduction(torch::kMean));
  return F::cross_entropy(logits.reshape({-1, V}), labels.reshape({-1}),
                          F::CrossEntropyFuncOptions().ignore_index(kIgnore).reduction(torch::kSum)) /
         static_cast<double>(normalizer);
}

}  // namespace grm::train
