// Supervised fine-tuning data: where (prompt, target) pairs come from and how they become token tensors.
//
// An ExampleSource maps a global example index (0, 1, 2, ... over the whole run, across epochs) to one
// example, deterministically: the trainer only keeps the next index in its state, so a resumed run sees the
// same examples in the same order as an uninterrupted one.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "engine/tokenizer.h"

namespace grm::train {

struct SftExample {
  std::string prompt;  // the judge prompt (not trained on)
  std::string target;  // what the model must write after it (the trainer appends the eos token)
};

class ExampleSource {
 public:
  virtual ~ExampleSource() = default;
  // Example number `index` of the run's stream (any index ≥ 0 is valid; sources cycle through epochs).
  virtual SftExample example(uint64_t index) const = 0;
  // Distinct underlying records (one epoch); > 0.
  virtual size_t size() const = 0;
};

// A fixed list of examples, cycled in order (tests, and JSONL records that carry "prompt" and "target").
class ListSource : public ExampleSource {
 public:
  explicit ListSource(std::vector<SftExample> examples);
  SftExample example(uint64_t index) const override { return examples_[index % examples_.size()]; }
  size_t size() const override { return examples_.size(); }

 private:
  std::vector<SftExample> examples_;
};

// Loads a training JSONL file. Records with string fields "prompt" and "target" are used as they are (cycled in
// file order, shuffled per epoch with `seed`); other records must be synthetic suite records (grm synth): each
// example shows the record's responses in a fresh random order (seeded by `seed` and the example index),
// renders the record's template for that order, and targets the gold judgment for that order.
// Throws grm::Error naming the file and line on a bad record, or when the file has no records.
std::shared_ptr<ExampleSource> load_sft_source(const std::string& path, uint64_t seed);

// The texts a tokenizer should be trained on from one file: for a synthetic-suite JSONL file, every record's
// rendered prompt (two response orders) and gold target; for a "prompt"/"target" JSONL, both strings; for
// any other file, each non-empty line.
std::vector<std::string> tokenizer_corpus(const std::string& path, uint64_t seed = 0);

// Token ids of prompt + target + eos; only the target and eos are trained on.
struct TokenizedExample {
  std::vector<int64_t> tokens;
  int64_t prompt_len = 0;  // the first prompt_len tokens are context
};

TokenizedExample tokenize_example(const engine::Tokenizer& tok, const SftExample& ex, int64_t eos_id);

// A right-padded batch for next-token prediction: inputs[b, t] = tokens[t], labels[b, t] = tokens[t + 1] when that
// token is a target token, else kIgnore (prompt positions and padding). Padding input ids are 0.
struct Batch {
  at::Tensor inputs;  // [B, T] int64, T = longest example - 1
  at::Tensor labels;  // [B, T] int64
  int64_t real_tokens = 0;    // non-padding input positions
  int64_t target_tokens = 0;  // labels that count
};

constexpr int64_t kIgnore = -100;

Batch make_batch(const std::vector<TokenizedExample>& examples);

// Cross-entropy of logits [B, T, V] against labels [B, T] over the labels that are not kIgnore: their mean, or
// when `normalizer` > 0 their sum / normalizer (micro-batches of one batch share the batch's target count).
at::Tensor masked_lm_loss(const at::Tensor& logits, const at::Tensor& labels, int64_t normalizer = 0);

}  // namespace grm::train
