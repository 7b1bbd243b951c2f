#include "engine/model.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <mutex>
#include <string>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <torch/torch.h>

#include "core/error.h"
#include "engine/linear.h"
#include "engine/model_layers.h"

namespace grm::engine {

using at::Tensor;
using namespace model_detail;

namespace {

// glibc returns large freed blocks to the OS (mmap threshold / heap trimming), so every big temporary is
// page-faulted in again; on VMs this made a softmax over a few MB 25x slower. Keep freed memory for reuse.
void tune_allocator() {
  static std::once_flag once;
  std::call_once(once, [] {
#if defined(__GLIBC__)
    const char* env = std::getenv("GRM_MALLOC_TUNING");
    if (env != nullptr && std::strcmp(env, "0") == 0) return;
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
  });
}

void check_tokens(const Tensor& tokens, int64_t dims, int64_t vocab, const char* what) {
  if (!tokens.defined() || tokens.dim() != dims)
    throw Error(std::string(what) + ": tokens must be a " + std::to_string(dims) + "-d int64 tensor");
  if (tokens.scalar_type() != torch::kLong) throw Error(std::string(what) + ": tokens must be int64");
  if (tokens.numel() == 0) throw Error(std::string(what) + ": empty token tensor");
  const auto [lo, hi] = at::aminmax(tokens);
  if (lo.item<int64_t>() < 0 || hi.item<int64_t>() >= vocab)
    throw Error(std::string(what) + ": token id outside the vocabulary [0, " + std::to_string(vocab) + ")");
}

}  // namespace

// ---- Transformer ----------------------------------------------------------------------------------------

Transformer::Transformer(ModelConfig config, c10::ScalarType dtype)
    : config_(std::move(config)), dtype_(dtype), kv_dtype_(dtype) {
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16)
    throw Error("model compute dtype must be float32, bfloat16 or float16");
  config_.validate();
  tune_allocator();
  model_ = register_module("model", std::make_shared<DecoderStack>(config_, dtype));
  if (!config_.tie_word_embeddings)
    lm_head_ = register_module("lm_head",
                               std::make_shared<LinearLayer>(config_.hidden_size, config_.vocab_size, false, dtype));
  for (const auto& p : parameters(true)) parameter_count_ += p.numel();
}

namespace {

// f(linear) for every linear layer of a decoder block (FusedLinear or LinearLayer).
template <typename F>
void for_each_linear(Block& block, F f) {
  f(block.self_attn->qkv);
  f(*block.self_attn->o_proj);
  f(block.mlp->gate_up);
  f(*block.mlp->down_proj);
}

// The same for every block, block by block.
template <typename F>
void for_each_block_linear(DecoderStack& stack, F f) {
  for (auto& layer : stack.layers) for_each_linear(*layer, f);
}

// Hands the heap's free memory back to the system: tune_allocator's thresholds keep freed blocks.
void trim_heap() {
#if defined(__GLIBC__)
  malloc_trim(0);
#endif
}

}  // namespace

void Transformer::store_linear_weights_transposed() {
  if (dtype_ != torch::kFloat) return;
  for_each_block_linear(*model_, [](auto& linear) { linear.store_transposed(); });
  if (lm_head_) lm_head_->store_transposed();
}

bool Transformer::pack_linear_weights() {
  if (dtype_ != torch::kFloat || !packed_kernel_available()) return false;
  for_each_block_linear(*model_, [](auto& linear) { linear.pack(); });
  pack_head();
  packed_ = true;
  return true;
}

void Transformer::pack_head() {
  if (lm_head_) {
    lm_head_->pack();
  } else {
    lm_packed_ = pack_weight(model_->embed_tokens->weight);
  }
}

bool Transformer::release_packed_originals() {
  if (!packed_) return false;
  for_each_block_linear(*model_, [](auto& linear) { linear.release(); });
  release_head();
  released_ = true;
  trim_heap();
  return true;
}

void Transformer::release_head() {
  if (lm_head_) {
    lm_head_->release();
  } else {  // the tied embedding: its lookups read rows of the packed copy from now on
    release_source(lm_packed_, model_->embed_tokens->weight);
    model_->embed_tokens->packed = &lm_packed_;
  }
}

bool Transformer::pack_and_release(int64_t layer) {
  if (layer < 0 || layer > config_.num_hidden_layers)
    throw Error("pack_and_release: no layer " + std::to_string(layer) + " (the model has " +
                std::to_string(config_.num_hidden_layers) + " blocks, then the head)");
  if (dtype_ != torch::kFloat || !packed_kernel_available()) return false;
  if (layer < config_.num_hidden_layers) {
    for_each_linear(*model_->layers[static_cast<size_t>(layer)], [](auto& linear) {
      linear.pack();
      linear.release();
    });
  } else {
    pack_head();
    release_head();
    packed_ = released_ = true;
  }
  trim_heap();  // this part's originals go back to the system before the next part is loaded
  return true;
}

void Transformer::init_random(uint64_t seed, double std) {
  torch::NoGradGuard no_grad;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  for (auto& [name, p] : named_weights()) {
    const bool is_norm = name.size() >= 11 && name.compare(name.size() - 11, 11, "norm.weight") == 0;
    const bool is_bias = name.size() >= 5 && name.compare(name.size() - 5, 5, ".bias") == 0;
    if (is_norm) {
      p.fill_(1.0);
    } else if (is_bias) {
      p.zero_();
    } else {
      Tensor t = torch::empty(p.sizes(), torch::kFloat);
      t.normal_(0.0, std, gen);
      p.copy_(t);
    }
  }
}

std::vector<std::pair<std::string, Tensor>> Transformer::named_weights() const {
  if (released_)
    throw Error("this model's linear weights live only in their packed copies (release_packed_originals): "
                "it runs inference only, and has no weights to save or train");
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& item : named_parameters(true)) out.emplace_back(item.key(), item.value());
  return out;
}

Tensor Transformer::rope_table(int64_t positions) {
  if (rope_.defined() && rope_.size(0) >= positions && rope_.scalar_type() == dtype_) return rope_;
  // A normal (non-inference) tensor, so that forward() can save it for backward even if built in decode().
  c10::InferenceMode normal_mode(false);
  torch::NoGradGuard no_grad;
  const int64_t n = std::max(positions, std::min<int64_t>(config_.max_position_embeddings, 4096));
  const int64_t D = config_.head_dim;
  // As HF: inv_freq = 1 / theta^(arange(0, D, 2) / D) in float32, angles = pos ⊗ inv_freq, emb = cat(a, a).
  const Tensor inv_freq =
      1.0 / torch::pow(config_.rope_theta, torch::arange(0, D, 2, torch::kLong).to(torch::kFloat) / D);
  const Tensor angles = torch::outer(torch::arange(n, torch::kLong).to(torch::kFloat), inv_freq);
  const Tensor cos = torch::cat({angles.cos(), angles.cos()}, -1);
  const Tensor sin = torch::cat({-angles.sin(), angles.sin()}, -1);
  rope_ = torch::stack({cos, sin}, 1).to(dtype_).contiguous();  // [n, 2, D]
  return rope_;
}

Tensor Transformer::logits(const Tensor& hidden) {
  const Tensor h = (*model_->norm)(hidden);
  const Tensor& w = lm_head_ ? lm_head_->weight : model_->embed_tokens->weight;
  return engine::linear(h, w, {}, lm_head_ ? &lm_head_->packed : &lm_packed_).to(torch::kFloat);
}

Tensor Transformer::forward(const Tensor& tokens) {
  check_tokens(tokens, 2, config_.vocab_size, "forward");
  const int64_t T = tokens.size(1);
  const Tensor table = rope_table(T).narrow(0, 0, T).view({1, T, 1, 2, config_.head_dim});
  PassContext ctx;
  ctx.cos = table.select(3, 0);
  ctx.sin = table.select(3, 1);
  ctx.scale = 1.0 / std::sqrt(static_cast<double>(config_.head_dim));
  ctx.mask = make_mask(torch::arange(T, torch::kLong).view({1, T}), T, config_.sliding_window, dtype_);
  return logits(model_->run(tokens, ctx));
}

void Transformer::set_kv_dtype(c10::ScalarType dtype) {
  if (dtype != torch::kFloat && dtype != torch::kBFloat16 && dtype != torch::kHalf)
    throw Error("KV cache dtype must be float32, bfloat16 or float16");
  kv_dtype_ = dtype;
}

KVCache Transformer::make_cache(int64_t batch, int64_t capacity) const {
  return KVCache::create(config_, batch, capacity, kv_dtype_);
}

Tensor Transformer::prefill(const Tensor& tokens, const std::vector<int64_t>& lengths, KVCache& cache,
                            const std::vector<int>& slots) {
  return run_cached(tokens, lengths, cache, slots, true);
}

Tensor Transformer::extend(const Tensor& tokens, const std::vector<int64_t>& lengths, KVCache& cache,
                           const std::vector<int>& slots) {
  return run_cached(tokens, lengths, cache, slots, false);
}

Tensor Transformer::decode(const Tensor& tokens, KVCache& cache, const std::vector<int>& slots) {
  if (!tokens.defined() || tokens.dim() != 1) throw Error("decode: tokens must be a 1-d int64 tensor");
  const int64_t B = tokens.size(0);
  return run_cached(tokens.view({B, 1}), std::vector<int64_t>(static_cast<size_t>(B), 1), cache, slots, false);
}

Tensor Transformer::run_cached(const Tensor& tokens, const std::vector<int64_t>& lengths, KVCache& cache,
                               const std::vector<int>& slots, bool restart) {
  c10::InferenceMode inference;
  check_tokens(tokens, 2, config_.vocab_size, restart ? "prefill" : "extend");
  const int64_t B = tokens.size(0), T = tokens.size(1);
  const int64_t Hkv = config_.num_key_value_heads, D = config_.head_dim, C = cache.capacity();
  if (!cache.defined()) throw Error("KV cache is not allocated");
  if (cache.num_layers() != config_.num_hidden_layers || cache.num_kv_heads() != Hkv || cache.head_dim() != D)
    throw Error("KV cache geometry does not match the model");
  if (static_cast<int64_t>(lengths.size()) != B || static_cast<int64_t>(slots.size()) != B)
    throw Error("lengths and slots must have one entry per row of tokens (" + std::to_string(B) + ")");

  std::vector<bool> used(static_cast<size_t>(cache.batch()), false);
  std::vector<int64_t> starts(static_cast<size_t>(B));
  int64_t kv_len = 0;
  bool all_full = true, contiguous = true;
  for (int64_t b = 0; b < B; ++b) {
    const int s = slots[static_cast<size_t>(b)];
    cache.check_slot(s);
    if (used[static_cast<size_t>(s)]) throw Error("slot " + std::to_string(s) + " listed twice");
    used[static_cast<size_t>(s)] = true;
    const int64_t len = lengths[static_cast<size_t>(b)];
    if (len < 1 || len > T)
      throw Error("length " + std::to_string(len) + " of row " + std::to_string(b) + " outside [1, " +
                  std::to_string(T) + "]");
    const int64_t start = restart ? 0 : cache.length(s);
    if (start + len > C)
      throw Error("KV cache slot " + std::to_string(s) + " overflows: " + std::to_string(start + len) +
                  " positions > capacity " + std::to_string(C));
    starts[static_cast<size_t>(b)] = start;
    kv_len = std::max(kv_len, start + len);
    all_full = all_full && len == T;
    contiguous = contiguous && s == slots[0] + b;
  }

  if (T > 1 && B * config_.num_attention_heads * T * kv_len > max_score_elements_)
    return run_split(tokens, lengths, cache, slots, restart, starts);

  // Positions (padding repeats the last real position), cache rows to write, rows of the new K/V to take.
  std::vector<int64_t> pos(static_cast<size_t>(B * T)), dst, src, last(static_cast<size_t>(B));
  dst.reserve(static_cast<size_t>(B * T * Hkv));
  if (!all_full) src.reserve(dst.capacity());
  for (int64_t b = 0; b < B; ++b) {
    const int64_t start = starts[static_cast<size_t>(b)], len = lengths[static_cast<size_t>(b)];
    const int64_t s = slots[static_cast<size_t>(b)];
    last[static_cast<size_t>(b)] = b * T + len - 1;
    for (int64_t t = 0; t < T; ++t) {
      pos[static_cast<size_t>(b * T + t)] = start + std::min(t, len - 1);
      if (t >= len) continue;
      for (int64_t h = 0; h < Hkv; ++h) {
        dst.push_back((s * Hkv + h) * C + start + t);
        if (!all_full) src.push_back((b * T + t) * Hkv + h);
      }
    }
  }
  const Tensor pos_t = torch::tensor(pos, torch::kLong).view({B, T});
  const Tensor table = rope_table(kv_len).index_select(0, pos_t.view({-1})).view({B, T, 1, 2, D});

  PassContext ctx;
  ctx.cos = table.select(3, 0);
  ctx.sin = table.select(3, 1);
  ctx.scale = 1.0 / std::sqrt(static_cast<double>(D));
  // bf16/f16 batched matmuls are much faster on contiguous operands: when the slots are a contiguous range
  // and at least half of the capacity is in use, read all of it (the tail is masked) instead of a strided view.
  // (Not when the cache is stored in another dtype: what is read is converted anyway, so read only kv_len.)
  const int64_t read_len =
      contiguous && dtype_ != torch::kFloat && cache.dtype() == dtype_ && 2 * kv_len >= C ? C : kv_len;
  ctx.mask = make_mask(pos_t, read_len, config_.sliding_window, dtype_);
  ctx.cache = &cache;
  ctx.dst_rows = std::move(dst);
  ctx.src_rows = std::move(src);
  if (contiguous) {
    ctx.slot_begin = slots[0];
  } else {
    ctx.slot_index = torch::tensor(std::vector<int64_t>(slots.begin(), slots.end()), torch::kLong);
  }
  ctx.kv_len = read_len;

  DecodeRows rows;
  if (T == 1 && !at::GradMode::is_enabled()) {
    for (int64_t b = 0; b < B; ++b) {
      const int s = slots[static_cast<size_t>(b)];
      rows.slot.push_back(s);
      rows.origin.push_back(cache.prefix_origin(s));
      rows.shared.push_back(std::min(cache.prefix_length(s), starts[static_cast<size_t>(b)]));
    }
    ctx.decode_rows = &rows;
  }
  if (restart)  // positions from 0 are rewritten: slots forked from these stop sharing them
    for (int64_t b = 0; b < B; ++b) cache.set_length(slots[static_cast<size_t>(b)], 0);
  Tensor h = model_->run(tokens, ctx);  // [B, T, hidden]
  h = T == 1 ? h.view({B, -1}) : h.view({B * T, -1}).index_select(0, torch::tensor(last, torch::kLong));
  const Tensor out = logits(h);
  for (int64_t b = 0; b < B; ++b)
    cache.set_length(slots[static_cast<size_t>(b)], starts[static_cast<size_t>(b)] + lengths[static_cast<size_t>(b)]);
  return out;
}

Tensor Transformer::run_split(const Tensor& tokens, const std::vector<int64_t>& lengths, KVCache& cache,
                              const std::vector<int>& slots, bool restart, const std::vector<int64_t>& starts) {
  const size_t B = lengths.size();
  const int64_t H = config_.num_attention_heads;
  if (B == 1) {  // one long row: consecutive chunks of positions, each attending to everything before it
    const int64_t len = lengths[0];
    const int64_t chunk = std::max<int64_t>(1, max_score_elements_ / (H * (starts[0] + len)));
    Tensor out;
    for (int64_t a = 0; a < len; a += chunk) {
      const int64_t n = std::min(chunk, len - a);
      out = run_cached(tokens.narrow(1, a, n), {n}, cache, slots, restart && a == 0);
    }
    return out;
  }
  std::vector<Tensor> outs;
  for (size_t b = 0; b < B;) {
    size_t e = b;
    int64_t group_t = 0, group_kv = 0;
    while (e < B) {  // grow the group while its scores fit (a single row always goes, split further if needed)
      const int64_t t = std::max(group_t, lengths[e]), kv = std::max(group_kv, starts[e] + lengths[e]);
      if (e > b && static_cast<int64_t>(e + 1 - b) * H * t * kv > max_score_elements_) break;
      group_t = t;
      group_kv = kv;
      ++e;
    }
    const auto n = static_cast<int64_t>(e - b);
    outs.push_back(run_cached(tokens.narrow(0, static_cast<int64_t>(b), n).narrow(1, 0, group_t),
                              std::vector<int64_t>(lengths.begin() + static_cast<long>(b), lengths.begin() + static_cast<long>(e)),
                              cache, std::vector<int>(slots.begin() + static_cast<long>(b), slots.begin() + static_cast<long>(e)),
                              restart));
    b = e;
  }
  return torch::cat(outs);
}

}  // namespace grm::engine
