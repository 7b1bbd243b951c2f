// The in-process Generator: a Transformer + Tokenizer decoding many sequences together with a KV cache.
//
// Prefix sharing: within a batch, each distinct prompt is prefilled once into one cache slot and that slot
// is forked to the other completions of the same prompt; all sequences of all requests then decode in one
// batch. Requests from many records share batches (up to EngineOptions::max_batch sequences at a time).
// Distinct prompts that begin alike (a record's permutations share the template's head and the conversation)
// compute their common beginning once: a later one copies those positions from an earlier one's slot and
// prefills only the rest (EngineOptions::share_prompt_prefixes).
//
// Seeds: sample j (= first_index + i) of a request uses Rng(derive_seed(params.seed, j)) (core/rng.h), so
// one sample can be reproduced alone by asking for {n = 1, first_index = j}; the logits it sees are the same up to
// floating-point rounding of the batched matmuls (exact in float32 for the test models, see tests).
#pragma once
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <c10/core/ScalarType.h>

#include "core/generator.h"
#include "engine/model.h"
#include "engine/tokenizer.h"

namespace grm::engine {

struct EngineOptions {
  c10::ScalarType dtype = c10::kBFloat16;  // compute dtype (bf16 uses oneDNN/AMX matmuls on this CPU)
  std::optional<c10::ScalarType> kv_dtype;  // KV cache storage, set on the model (Transformer::set_kv_dtype,
                                           // so it applies to every user of that model); unset: left as is
  int max_batch = 64;                      // sequences decoded together
  int threads = 0;                         // libtorch intra-op and worker_pool threads; 0 keeps their defaults
  bool pack_weights = true;                // open(): the linear weights packed where the CPU has the kernel
                                           // (Transformer::pack_and_release, block by block as they load:
                                           // faster products; the packed copy replaces the weights, in
                                           // bfloat16 for a bfloat16 checkpoint); false: as loaded
  bool share_prompt_prefixes = true;       // a distinct prompt that begins like an earlier one in its batch
                                           // (16+ tokens) copies those positions from that one's cache slot
                                           // instead of computing them again
  std::optional<bool> add_bos;             // default: when the config's bos_token_id is "<s>", "<bos>" or
                                           // "<|begin_of_text|>" (Llama, Mistral, Gemma; not Qwen2)
};

struct GenerationStats {
  int64_t sequences = 0;
  int64_t prompt_tokens_naive = 0;  // Σ over sequences of their prompt length (no sharing)
  int64_t prefill_tokens = 0;       // prompt tokens actually computed
  int64_t decode_tokens = 0;        // tokens produced by decode steps
  int64_t decode_steps = 0;
  double prefill_seconds = 0;
  double decode_seconds = 0;
};

class LocalGenerator : public Generator {
 public:
  LocalGenerator(std::shared_ptr<Transformer> model, std::shared_ptr<const Tokenizer> tokenizer,
                 EngineOptions options = {});
  // Loads DIR (config.json, safetensors, tokenizer.json or tokenizer.model).
  static std::unique_ptr<LocalGenerator> open(const std::string& dir, EngineOptions options = {});

  std::vector<std::vector<Completion>> generate(const std::vector<GenerationRequest>& requests) override;

  const GenerationStats& stats() const { return stats_; }
  void reset_stats() { stats_ = {}; }
  Transformer& model() { return *model_; }
  const Tokenizer& tokenizer() const { return *tokenizer_; }
  const EngineOptions& options() const { return options_; }
  // The token ids a prompt becomes (with BOS when the model wants one).
  std::vector<int> encode_prompt(const std::string& prompt) const;

 private:
  struct Sequence;
  void run_batch(std::vector<Sequence*>& batch, const std::vector<std::vector<int>>& prompt_tokens);

  std::shared_ptr<Transformer> model_;
  std::shared_ptr<const Tokenizer> tokenizer_;
  EngineOptions options_;
  std::vector<int64_t> eos_ids_;
  bool add_bos_ = false;
  GenerationStats stats_;
};

}  // namespace grm::engine
