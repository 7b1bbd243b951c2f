// Decoder-only transformer of the Llama / Mistral / Qwen2 family, as a torch::nn::Module.
//
//   embed_tokens → N × [ x += Attn(RMSNorm(x)); x += MLP(RMSNorm(x)) ] → RMSNorm → lm_head (or tied embedding)
//   Attn: q/k/v projections (+bias when config.attention_bias), RoPE (HF rotate_half convention), grouped-query
//         attention (n_kv_heads ≤ n_heads, no kv-head copies), o_proj.   MLP: down(act(gate(x)) * up(x)).
//
// Parameters carry Hugging Face names (named_parameters()):
//   model.embed_tokens.weight, model.layers.N.self_attn.{q,k,v,o}_proj.weight, model.layers.N.self_attn.
//   {q,k,v}_proj.bias (attention_bias), model.layers.N.mlp.{gate,up,down}_proj.weight,
//   model.layers.N.{input,post_attention}_layernorm.weight, model.norm.weight, lm_head.weight (untied only).
// All parameters have the compute dtype given at construction (float32 or bfloat16; float16 works but is slow
// on CPU). forward() is differentiable (training); prefill()/decode() run under c10::InferenceMode.
//
// Logits are always returned as float32. Positions are not limited by max_position_embeddings (RoPE is
// computed for any position); a KVCache's capacity is the only limit.
//
// Not thread-safe: one model instance serves one thread at a time (the RoPE table grows lazily).
//
// Process-wide side effect: constructing the first Transformer raises glibc's mmap and trim thresholds to
// 1 GiB, so freed tensor memory is reused instead of being returned to the OS and page-faulted back (large
// temporaries were up to 25x slower without it). Set GRM_MALLOC_TUNING=0 to keep the defaults.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/nn/module.h>

#include "engine/config.h"
#include "engine/kv_cache.h"
#include "engine/linear.h"

namespace grm::engine {

namespace model_detail {  // model_layers.h
struct DecoderStack;  // model.*
struct LinearLayer;   // lm_head
}  // namespace model_detail

class Transformer : public torch::nn::Module {
 public:
  // Parameters are allocated uninitialized: call init_random() or load weights (weights.h).
  explicit Transformer(ModelConfig config, c10::ScalarType dtype = c10::kFloat);

  const ModelConfig& config() const { return config_; }
  c10::ScalarType dtype() const { return dtype_; }

  // Deterministic random init from `seed`: weights ~ N(0, std²) (drawn in float32, then converted), RMSNorm
  // weights = 1, biases = 0. Same seed → same weights whatever the dtype (up to rounding).
  void init_random(uint64_t seed, double std = 0.02);

  // Named parameters in a stable order (HF names); the tensors are the live parameters (no copies).
  std::vector<std::pair<std::string, at::Tensor>> named_weights() const;

  // Full causal pass without cache. tokens: [B, T] int64 → logits [B, T, V] float32. Right-padded batches are
  // fine: position t only sees positions ≤ t, so padding affects only positions after the real tokens.
  // Differentiable unless called under NoGradGuard/InferenceMode.
  at::Tensor forward(const at::Tensor& tokens);

  // For inference in float32: stores every linear layer's weight [out, in] transposed (column-major: its
  // transpose is contiguous), so that x · Wᵀ reaches the BLAS library as a plain product. OpenBLAS runs that
  // faster than the transposed-operand form: measured on an AVX2 AMD EPYC, 5–28 % per product at 32 rows and
  // 15–40 % at 1 row for this model family's shapes. Values, shapes and names are unchanged (checkpoints
  // write contiguous copies). No-op for other dtypes (oneDNN's bf16 path was not measured with it) and for
  // the tied embedding. Call once after loading, before decoding; not for a model that is being trained.
  void store_linear_weights_transposed();

  // For inference in float32 on a CPU with engine::linear's kernel (AVX2): adds a packed copy of every
  // linear weight, and of the tied embedding for the logits (linear.h), which every product then uses: on
  // the 100 M benchmark model decodes ran 1.5-1.9× faster, on the bundled one ~10 % (whole `grm score`).
  // Costs a second copy of those weights in memory (in bfloat16 for weights whose values all are bfloat16
  // values; release_packed_originals() drops the first). A packed copy is used only while its weight is
  // unchanged. Returns false (and does nothing) for other dtypes or CPUs.
  bool pack_linear_weights();
  bool weights_packed() const { return packed_; }
  // After pack_linear_weights(), for a model that only runs inference from then on: drops each packed linear
  // weight's own values (its parameter becomes a [0] tensor), the tied embedding's too (its lookups then read
  // rows of the head's packed copy), so the packed copy is the only one; outputs are unchanged to the bit. A
  // weight packed in bfloat16 (a bfloat16 checkpoint) then costs 2 bytes a value instead of 4 + 2.
  // named_weights() and training are off for such a model (they throw). Returns false (and does nothing) when
  // nothing is packed.
  bool release_packed_originals();
  bool originals_released() const { return released_; }
  // pack_linear_weights() and release_packed_originals() for one part of the model at a time: decoder block
  // `layer` (< num_hidden_layers), or with layer == num_hidden_layers the head (the tied embedding), after
  // which weights_packed() and originals_released() hold. For a loader that packs each block as soon as its
  // tensors are in (load_model's AfterLayer, LocalGenerator::open), so that the float32 originals of all blocks
  // are never resident together. Returns false (and does nothing) where pack_linear_weights() would; throws
  // grm::Error for a layer outside [0, num_hidden_layers].
  bool pack_and_release(int64_t layer);
  // Number of parameter values as loaded (the tied embedding once), unchanged by release_packed_originals().
  int64_t parameter_count() const { return parameter_count_; }

  // The dtype of the caches make_cache() creates: the compute dtype unless set. float16 storage with float32
  // compute halves what decode attention reads (it is bound by memory bandwidth at k = 32); keys and values
  // are rounded to float16 when written (values beyond ±65504 become ±inf, as in any float16 cache),
  // attention runs in float32. A cache of any of float32 / bfloat16 / float16 works with any compute dtype
  // (run_cached converts). Throws grm::Error for another dtype.
  void set_kv_dtype(c10::ScalarType dtype);
  c10::ScalarType kv_dtype() const { return kv_dtype_; }

  // A cache shaped for this model in kv_dtype().
  KVCache make_cache(int64_t batch, int64_t capacity) const;

  // Starts sequences from position 0. tokens: [B, T] int64, right-padded; lengths[b] ∈ [1, T] real tokens of
  // row b; slots[b] the distinct cache slot it goes to (its previous content is discarded). Writes K/V for
  // positions 0..lengths[b]-1 and sets the slot length. Returns float32 logits at each row's last real token
  // [B, V].
  at::Tensor prefill(const at::Tensor& tokens, const std::vector<int64_t>& lengths, KVCache& cache,
                     const std::vector<int>& slots);

  // Like prefill, but appends to each slot's current content: row b's tokens take positions
  // cache.length(slots[b]) .. + lengths[b]-1 and attend to everything before them (chunked prefill, or adding
  // a suffix after a forked shared prefix). Returns float32 logits at each row's last real token [B, V].
  at::Tensor extend(const at::Tensor& tokens, const std::vector<int64_t>& lengths, KVCache& cache,
                    const std::vector<int>& slots);

  // One decoding step: tokens [B] int64 (token b goes to slots[b] at position cache.length(slots[b])) →
  // float32 logits [B, V]; every listed slot's length grows by one. Fastest when slots form an ascending
  // contiguous range (e.g. 0..B-1): the cache is then read in place; otherwise the slots' K/V are gathered.
  at::Tensor decode(const at::Tensor& tokens, KVCache& cache, const std::vector<int>& slots);

  // prefill()/extend() bound the size of one attention score tensor (rows × heads × new positions × keys) to
  // this many elements by splitting the work: rows into groups (each trimmed to its longest row), and a single
  // long row into consecutive chunks of positions. Results are the same; memory stays bounded and, on CPU,
  // small score tensors are much faster (cache-resident, no page faults). Default 2^21.
  void set_max_score_elements(int64_t n) { max_score_elements_ = n < 1 ? 1 : n; }
  int64_t max_score_elements() const { return max_score_elements_; }

 private:
  at::Tensor run_cached(const at::Tensor& tokens, const std::vector<int64_t>& lengths, KVCache& cache,
                        const std::vector<int>& slots, bool restart);
  at::Tensor run_split(const at::Tensor& tokens, const std::vector<int64_t>& lengths, KVCache& cache,
                       const std::vector<int>& slots, bool restart, const std::vector<int64_t>& starts);
  at::Tensor rope_table(int64_t positions);  // [positions, 2, D]: cos, signed sin in compute dtype
  at::Tensor logits(const at::Tensor& hidden);  // final norm + lm_head, float32
  void pack_head();     // the head's share of pack_linear_weights()
  void release_head();  // and of release_packed_originals()

  ModelConfig config_;
  c10::ScalarType dtype_;
  c10::ScalarType kv_dtype_;
  std::shared_ptr<model_detail::DecoderStack> model_;
  std::shared_ptr<model_detail::LinearLayer> lm_head_;  // null when tied
  PackedWeight lm_packed_;  // the tied embedding, packed (pack_linear_weights)
  bool packed_ = false;
  bool released_ = false;
  int64_t parameter_count_ = 0;
  at::Tensor rope_;                       // [P, 2, D]
  int64_t max_score_elements_ = int64_t{1} << 21;
};

}  // namespace grm::engine
