// Supervised fine-tuning of a Transformer on (prompt, target) examples: AdamW, linear warmup + cosine decay,
// gradient clipping, and precision modes:
//   Fp32   — float32 weights, float32 compute.
//   Mixed  — float32 master weights (what the optimizer updates and checkpoints), copied each step into a
//            bfloat16 twin that runs forward/backward (oneDNN bf16 matmuls); its bf16 gradients are copied
//            back to float32 for clipping and the update. Default: see docs/training.md for measurements.
// Everything that decides the next step (master weights, AdamW moments and step count, the data cursor) is
// in the trainer state, so save_state() + load_state() continue a run exactly: same losses, bit for bit.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/model.h"
#include "engine/tokenizer.h"
#include "train/sft_data.h"

namespace torch::optim {
class AdamW;
}

namespace grm::train {

enum class Precision { Fp32, Mixed };
// "fp32" | "mixed" (alias "bf16") | "auto" (mixed where the CPU has native bf16, engine/cpu_dtype.h, else
// fp32); throws grm::Error.
Precision parse_precision(const std::string& name);
std::string to_string(Precision p);

struct TrainOptions {
  int64_t steps = 1000;        // total optimizer steps (the schedule's length)
  double lr = 1e-3;            // peak learning rate
  double min_lr_ratio = 0.1;   // cosine decays to lr * min_lr_ratio
  int64_t warmup = 50;         // linear warmup steps
  int64_t batch = 8;           // examples per step
  int64_t micro_batch = 8;     // examples per forward/backward pass (gradients are accumulated); 0: batch
  int64_t seq_len = 1024;      // longer examples (prompt + target + eos, minus one) are skipped
  double weight_decay = 0.1;   // on matrices (≥ 2-d) only
  double beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  double clip = 1.0;           // max global gradient norm (≤ 0: off)
  uint64_t seed = 0;           // data order and response permutations
  Precision precision = Precision::Mixed;
};

// Learning rate for 0-based step `step`: warmup from lr/warmup to lr, then cosine to lr * min_lr_ratio at
// `steps`.
double lr_at(const TrainOptions& o, int64_t step);

struct StepStats {
  int64_t step = 0;  // 1-based number of the step just taken
  double loss = 0;
  double lr = 0;
  double grad_norm = 0;
  int64_t real_tokens = 0, target_tokens = 0, skipped = 0;
  double seconds = 0;
  double forward_seconds = 0, backward_seconds = 0, update_seconds = 0;  // parts of `seconds`
};

class Trainer {
 public:
  // `model` must be float32 (the master copy); it is trained in place.
  Trainer(std::shared_ptr<engine::Transformer> model, std::shared_ptr<const engine::Tokenizer> tokenizer,
          std::shared_ptr<const ExampleSource> data, TrainOptions options);
  ~Trainer();

  StepStats step();
  int64_t steps_done() const { return step_; }
  uint64_t cursor() const { return cursor_; }
  engine::Transformer& model() { return *master_; }
  const TrainOptions& options() const { return opt_; }
  void set_options(const TrainOptions& o);  // e.g. a longer schedule on resume (model shape is fixed)

  // Trainer state: one safetensors file (written atomically) with the master weights, AdamW moments, and
  // metadata {format, step, cursor, adam_step, config (the model's config.json), options}.
  void save_state(const std::string& path) const;
  void load_state(const std::string& path);
  // The model config stored in a state file (to build the model before load_state()).
  static nlohmann::json state_config(const std::string& path);

 private:
  std::vector<TokenizedExample> next_examples(int64_t* skipped);

  std::shared_ptr<engine::Transformer> master_, compute_;  // compute_ == master_ for Fp32
  std::shared_ptr<const engine::Tokenizer> tok_;
  std::shared_ptr<const ExampleSource> data_;
  TrainOptions opt_;
  std::vector<at::Tensor> master_params_, compute_params_;
  std::vector<std::string> names_;
  std::unique_ptr<torch::optim::AdamW> adam_;
  int64_t eos_ = 0;
  int64_t step_ = 0;
  uint64_t cursor_ = 0;
};

}  // namespace grm::train
