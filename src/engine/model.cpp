#include "engine/model.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include <torch/torch.h>

#include "core/error.h"

namespace grm::engine {

using at::Tensor;

// ---- layers (HF parameter names) -----------------------------------------------------------------------

struct LinearLayer : torch::nn::Module {
  Tensor weight, bias;
  LinearLayer(int64_t in, int64_t out, bool with_bias, c10::ScalarType dtype)
      : LinearLayer(torch::empty({out, in}, torch::TensorOptions().dtype(dtype)),
                    with_bias ? torch::empty({out}, torch::TensorOptions().dtype(dtype)) : Tensor()) {}
  // Registers the given tensors (possibly views into a fused allocation) as this layer's parameters.
  LinearLayer(const Tensor& w, const Tensor& b) {
    weight = register_parameter("weight", w);
    if (b.defined()) bias = register_parameter("bias", b);
  }
  Tensor operator()(const Tensor& x) const { return at::linear(x, weight, bias); }
};

namespace {

struct Embedding : torch::nn::Module {
  Tensor weight;
  Embedding(int64_t vocab, int64_t dim, c10::ScalarType dtype) {
    weight = register_parameter("weight", torch::empty({vocab, dim}, torch::TensorOptions().dtype(dtype)));
  }
};

struct RMSNorm : torch::nn::Module {
  Tensor weight;
  double eps;
  RMSNorm(int64_t dim, double eps_, c10::ScalarType dtype) : eps(eps_) {
    weight = register_parameter("weight", torch::ones({dim}, torch::TensorOptions().dtype(dtype)));
  }
  // HF: weight * (x_f32 * rsqrt(mean(x_f32²) + eps)).to(dtype)
  Tensor operator()(const Tensor& x) const {
    if (x.scalar_type() == torch::kFloat) return x * at::rsqrt(x.pow(2).mean(-1, true).add_(eps)) * weight;
    const Tensor xf = x.to(torch::kFloat);
    return (xf * at::rsqrt(xf.pow(2).mean(-1, true).add_(eps))).to(x.scalar_type()) * weight;
  }
};

// What one pass over the layers shares: rotary factors, the additive mask and where the K/V go.
struct PassContext {
  Tensor cos, sin;  // [B|1, T, 1, D]; sin carries the rotate_half sign: cat(-sin, sin)
  Tensor mask;      // additive, [B|1, T, L]
  double scale = 1.0;
  // Cached passes only:
  KVCache* cache = nullptr;
  Tensor dst_rows;          // [M] rows of a layer cache viewed as [Bc*Hkv*C, D]
  Tensor src_rows;          // [M] rows of the new K/V viewed as [B*T*Hkv, D]; undefined: all, in order
  int64_t slot_begin = -1;  // ≥ 0: the slots are slot_begin .. slot_begin+B-1 (cache read in place)
  Tensor slot_index;        // [B] otherwise
  int64_t kv_len = 0;       // keys 0 .. kv_len-1 are read from the cache
};

// x * cos + rotate_half(x) * sin, with rotate_half(x) * sin == roll(x, D/2) * cat(-sin, sin).
Tensor rotary(const Tensor& x, const PassContext& ctx) {
  return at::addcmul(x * ctx.cos, x.roll(x.size(-1) / 2, -1), ctx.sin);
}

// q [B, T, H, D] (already scaled), keys/values [B, Hkv, L, D], mask [B|1, T, L] (additive) → [B, T, H*D].
// Query head h uses kv head h / G (HF repeat_kv order), done by folding the G heads of a group into the
// matmul rows (no K/V copies). One new position (decode): scores = K·qᵀ [B, Hkv, L, G], which keeps K (a
// strided view of the cache) in its natural layout for the batched matmul. Several positions: q·Kᵀ
// [B, Hkv, G*T, L] with the softmax over the contiguous last dimension.
Tensor attend(const Tensor& q, const Tensor& keys, const Tensor& values, const Tensor& mask) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), D = q.size(3);
  const int64_t Hkv = keys.size(1), G = H / Hkv, L = keys.size(2), Bm = mask.size(0);
  const bool low_precision = q.scalar_type() != torch::kFloat;
  if (T == 1) {
    Tensor scores = at::matmul(keys, q.reshape({B, Hkv, G, D}).transpose(2, 3));  // [B, Hkv, L, G]
    scores.add_(mask.view({Bm, 1, L, 1}));
    const Tensor probs = low_precision ? at::softmax(scores, 2, torch::kFloat).to(q.scalar_type()) : at::softmax(scores, 2);
    return at::matmul(probs.transpose(2, 3), values).view({B, 1, H * D});  // [B, Hkv, G, D]
  }
  const Tensor qh = q.transpose(1, 2).reshape({B, Hkv, G * T, D});
  Tensor scores = at::matmul(qh, keys.transpose(2, 3));  // [B, Hkv, G*T, L]
  scores.view({B, Hkv, G, T, L}).add_(mask.view({Bm, 1, 1, T, L}));
  const Tensor probs = low_precision ? at::softmax(scores, -1, torch::kFloat).to(q.scalar_type()) : at::softmax(scores, -1);
  const Tensor out = at::matmul(probs, values);  // [B, Hkv, G*T, D]
  return out.view({B, H, T, D}).transpose(1, 2).reshape({B, T, H * D});
}

// Several linear layers sharing one input, stored as row blocks of one [sum(out), in] weight (and bias) so
// that inference runs one matmul. Each block is registered as its own HF-named parameter (a view into the
// fused storage), so training and checkpoints see separate tensors. If a parameter stops aliasing the
// storage (e.g. Module::to() replaced it), fused() returns false and callers use the separate layers.
struct FusedLinear {
  Tensor weight, bias;
  std::vector<std::shared_ptr<LinearLayer>> parts;
  std::vector<const void*> ptrs;

  FusedLinear(int64_t in, const std::vector<int64_t>& outs, bool with_bias, c10::ScalarType dtype) {
    torch::NoGradGuard no_grad;
    int64_t total = 0;
    for (int64_t o : outs) total += o;
    const auto opts = torch::TensorOptions().dtype(dtype);
    weight = torch::empty({total, in}, opts);
    if (with_bias) bias = torch::empty({total}, opts);
    int64_t off = 0;
    for (int64_t o : outs) {
      parts.push_back(std::make_shared<LinearLayer>(weight.narrow(0, off, o),
                                                    with_bias ? bias.narrow(0, off, o) : Tensor()));
      ptrs.push_back(parts.back()->weight.data_ptr());
      if (with_bias) ptrs.push_back(parts.back()->bias.data_ptr());
      off += o;
    }
  }
  bool fused() const {
    if (at::GradMode::is_enabled()) return false;  // training: gradients flow to the separate parameters
    size_t i = 0;
    for (const auto& p : parts) {
      if (p->weight.data_ptr() != ptrs[i++] || p->weight.scalar_type() != weight.scalar_type()) return false;
      if (bias.defined() && p->bias.data_ptr() != ptrs[i++]) return false;
    }
    return true;
  }
};

struct Attention : torch::nn::Module {
  FusedLinear qkv;
  std::shared_ptr<LinearLayer> o_proj;
  int64_t heads, kv_heads, head_dim;
  Attention(const ModelConfig& c, c10::ScalarType dtype)
      : qkv(c.hidden_size, {c.num_attention_heads * c.head_dim, c.num_key_value_heads * c.head_dim,
                            c.num_key_value_heads * c.head_dim},
            c.attention_bias, dtype),
        heads(c.num_attention_heads), kv_heads(c.num_key_value_heads), head_dim(c.head_dim) {
    register_module("q_proj", qkv.parts[0]);
    register_module("k_proj", qkv.parts[1]);
    register_module("v_proj", qkv.parts[2]);
    o_proj = register_module("o_proj", std::make_shared<LinearLayer>(heads * head_dim, c.hidden_size, false, dtype));
  }

  Tensor operator()(const Tensor& x, const PassContext& ctx, int64_t layer) const {
    const int64_t B = x.size(0), T = x.size(1), D = head_dim, H = heads, Hkv = kv_heads;
    Tensor q, k, v;
    if (qkv.fused()) {
      const Tensor y = at::linear(x, qkv.weight, qkv.bias).view({B, T, H + 2 * Hkv, D});
      const Tensor qk = rotary(y.narrow(2, 0, H + Hkv), ctx);
      q = qk.narrow(2, 0, H).mul_(ctx.scale);
      k = qk.narrow(2, H, Hkv);
      v = y.narrow(2, H + Hkv, Hkv);
    } else {
      q = rotary((*qkv.parts[0])(x).view({B, T, H, D}), ctx).mul_(ctx.scale);
      k = rotary((*qkv.parts[1])(x).view({B, T, Hkv, D}), ctx);
      v = (*qkv.parts[2])(x).view({B, T, Hkv, D});
    }
    if (ctx.cache == nullptr) return (*o_proj)(attend(q, k.transpose(1, 2), v.transpose(1, 2), ctx.mask));

    const Tensor kc = ctx.cache->k(layer), vc = ctx.cache->v(layer);  // [Bc, Hkv, C, D]
    Tensor ks = k.reshape({-1, D}), vs = v.reshape({-1, D});
    if (ctx.src_rows.defined()) {
      ks = ks.index_select(0, ctx.src_rows);
      vs = vs.index_select(0, ctx.src_rows);
    }
    kc.view({-1, D}).index_copy_(0, ctx.dst_rows, ks);
    vc.view({-1, D}).index_copy_(0, ctx.dst_rows, vs);
    Tensor keys, values;
    if (ctx.slot_begin >= 0) {
      keys = kc.narrow(0, ctx.slot_begin, B).narrow(2, 0, ctx.kv_len);
      values = vc.narrow(0, ctx.slot_begin, B).narrow(2, 0, ctx.kv_len);
    } else {
      keys = kc.narrow(2, 0, ctx.kv_len).index_select(0, ctx.slot_index);
      values = vc.narrow(2, 0, ctx.kv_len).index_select(0, ctx.slot_index);
    }
    return (*o_proj)(attend(q, keys, values, ctx.mask));
  }
};

struct Mlp : torch::nn::Module {
  FusedLinear gate_up;
  std::shared_ptr<LinearLayer> down_proj;
  Activation act;
  int64_t inter;
  Mlp(const ModelConfig& c, c10::ScalarType dtype)
      : gate_up(c.hidden_size, {c.intermediate_size, c.intermediate_size}, false, dtype),
        act(c.hidden_act),
        inter(c.intermediate_size) {
    register_module("gate_proj", gate_up.parts[0]);
    register_module("up_proj", gate_up.parts[1]);
    down_proj = register_module("down_proj", std::make_shared<LinearLayer>(inter, c.hidden_size, false, dtype));
  }
  Tensor operator()(const Tensor& x) const {
    Tensor g, u;
    if (gate_up.fused()) {
      const Tensor y = at::linear(x, gate_up.weight);
      g = y.narrow(-1, 0, inter);
      u = y.narrow(-1, inter, inter);
    } else {
      g = (*gate_up.parts[0])(x);
      u = (*gate_up.parts[1])(x);
    }
    const Tensor a = act == Activation::Silu ? at::silu(g) : at::gelu(g, "tanh");
    return (*down_proj)(a * u);
  }
};

struct Block : torch::nn::Module {
  std::shared_ptr<Attention> self_attn;
  std::shared_ptr<Mlp> mlp;
  std::shared_ptr<RMSNorm> input_layernorm, post_attention_layernorm;
  Block(const ModelConfig& c, c10::ScalarType dtype) {
    self_attn = register_module("self_attn", std::make_shared<Attention>(c, dtype));
    mlp = register_module("mlp", std::make_shared<Mlp>(c, dtype));
    input_layernorm = register_module("input_layernorm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, dtype));
    post_attention_layernorm =
        register_module("post_attention_layernorm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, dtype));
  }
  Tensor operator()(const Tensor& x, const PassContext& ctx, int64_t layer) const {
    const Tensor h = x + (*self_attn)((*input_layernorm)(x), ctx, layer);
    return h + (*mlp)((*post_attention_layernorm)(h));
  }
};

// Additive mask [B|1, T, L] from query positions pos [B|1, T]: key j is visible from position p when j ≤ p
// (and p - j < window when window > 0).
Tensor make_mask(const Tensor& pos, int64_t L, int64_t window, c10::ScalarType dtype) {
  const Tensor j = torch::arange(L, torch::kLong).view({1, 1, L});
  const Tensor p = pos.unsqueeze(-1);  // [B|1, T, 1]
  Tensor hidden = j > p;               // [B|1, T, L]
  if (window > 0) hidden.logical_or_(j <= p - window);
  return torch::zeros(hidden.sizes(), torch::TensorOptions().dtype(dtype))
      .masked_fill_(hidden, -std::numeric_limits<double>::infinity());
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

struct DecoderStack : torch::nn::Module {
  std::shared_ptr<Embedding> embed_tokens;
  std::vector<std::shared_ptr<Block>> layers;
  std::shared_ptr<RMSNorm> norm;
  DecoderStack(const ModelConfig& c, c10::ScalarType dtype) {
    embed_tokens = register_module("embed_tokens", std::make_shared<Embedding>(c.vocab_size, c.hidden_size, dtype));
    torch::nn::ModuleList list;
    for (int64_t i = 0; i < c.num_hidden_layers; ++i) {
      layers.push_back(std::make_shared<Block>(c, dtype));
      list->push_back(layers.back());
    }
    register_module("layers", list);
    norm = register_module("norm", std::make_shared<RMSNorm>(c.hidden_size, c.rms_norm_eps, dtype));
  }
  Tensor run(const Tensor& tokens, const PassContext& ctx) const {
    Tensor x = at::embedding(embed_tokens->weight, tokens);
    for (size_t i = 0; i < layers.size(); ++i) x = (*layers[i])(x, ctx, static_cast<int64_t>(i));
    return x;
  }
};

// ---- Transformer ----------------------------------------------------------------------------------------

Transformer::Transformer(ModelConfig config, c10::ScalarType dtype) : config_(std::move(config)), dtype_(dtype) {
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16)
    throw Error("model compute dtype must be float32, bfloat16 or float16");
  config_.validate();
  model_ = register_module("model", std::make_shared<DecoderStack>(config_, dtype));
  if (!config_.tie_word_embeddings)
    lm_head_ = register_module("lm_head",
                               std::make_shared<LinearLayer>(config_.hidden_size, config_.vocab_size, false, dtype));
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
  return at::linear(h, w).to(torch::kFloat);
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

KVCache Transformer::make_cache(int64_t batch, int64_t capacity) const {
  return KVCache::create(config_, batch, capacity, dtype_);
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
  if (cache.num_layers() != config_.num_hidden_layers || cache.num_kv_heads() != Hkv || cache.head_dim() != D ||
      cache.dtype() != dtype_)
    throw Error("KV cache geometry or dtype does not match the model");
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
  ctx.mask = make_mask(pos_t, kv_len, config_.sliding_window, dtype_);
  ctx.cache = &cache;
  ctx.dst_rows = torch::tensor(dst, torch::kLong);
  if (!all_full) ctx.src_rows = torch::tensor(src, torch::kLong);
  if (contiguous) {
    ctx.slot_begin = slots[0];
  } else {
    ctx.slot_index = torch::tensor(std::vector<int64_t>(slots.begin(), slots.end()), torch::kLong);
  }
  ctx.kv_len = kv_len;

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
