// Building blocks of the Transformer (model.h), internal to model.cpp: HF-named layers, fused inference
// projections, rotary embedding, grouped-query attention and the additive mask.
#pragma once
#include <cmath>
#include <limits>
#include <memory>
#include <tuple>
#include <vector>

#include <torch/torch.h>

#include "engine/config.h"
#include "engine/decode_attention.h"
#include "engine/fused_ops.h"
#include "engine/kv_cache.h"
#include "engine/linear.h"

namespace grm::engine::model_detail {

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
  PackedWeight packed;  // see Transformer::pack_linear_weights
  Tensor operator()(const Tensor& x) const { return engine::linear(x, weight, bias, &packed); }
  // Same values, transposed storage (see Transformer::store_linear_weights_transposed).
  void store_transposed() {
    torch::NoGradGuard no_grad;
    weight.set_data(weight.t().contiguous().t());
  }
  void pack() { packed = pack_weight(weight); }
  // Leaves the packed copy as the weight's only copy (Transformer::release_packed_originals).
  void release() {
    if (packed.defined()) release_source(packed, weight);
  }
};

struct Embedding : torch::nn::Module {
  Tensor weight;
  const PackedWeight* packed = nullptr;  // the tied head's packed copy once it replaced the weight (release)
  Embedding(int64_t vocab, int64_t dim, c10::ScalarType dtype) {
    weight = register_parameter("weight", torch::empty({vocab, dim}, torch::TensorOptions().dtype(dtype)));
  }
  Tensor operator()(const Tensor& tokens) const {
    return packed != nullptr && packed->standalone ? packed_rows(*packed, tokens) : at::embedding(weight, tokens);
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
    if (fused_rows_apply(x) && fused_ops_apply(weight) && weight.dim() == 1)
      return rms_norm(x, weight, eps);
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
  std::vector<int64_t> dst_rows;  // rows of a layer cache viewed as [Bc*Hkv*C, D] (KVCache::write_rows)
  std::vector<int64_t> src_rows;  // rows of the new K/V viewed as [B*T*Hkv, D]; empty: all, in order
  int64_t slot_begin = -1;  // ≥ 0: the slots are slot_begin .. slot_begin+B-1 (cache read in place)
  Tensor slot_index;        // [B] otherwise
  int64_t kv_len = 0;       // keys 0 .. kv_len-1 are read from the cache
  const DecodeRows* decode_rows = nullptr;  // one new position per row: the decode attention kernel's rows
};

// x * cos + rotate_half(x) * sin, with rotate_half(x) * sin == roll(x, D/2) * cat(-sin, sin).
inline Tensor rotary(const Tensor& x, const PassContext& ctx) {
  return at::addcmul(x * ctx.cos, x.roll(x.size(-1) / 2, -1), ctx.sin);
}

// q [B, T, H, D] (already scaled), keys/values [B, Hkv, L, D], mask [B|1, T, L] (additive) → [B, T, H*D].
// Query head h uses kv head h / G (HF repeat_kv order), done by folding the G heads of a group into the
// matmul rows (no K/V copies). Scores are q·Kᵀ [B, Hkv, G*T, L] with the softmax over the last dimension,
// except for one new position over a strided view of the cache (decode with L < capacity): K·qᵀ
// [B, Hkv, L, G] keeps K in its natural layout, which the bf16 (oneDNN) batched matmul needs to avoid a copy.
inline Tensor attend(const Tensor& q, const Tensor& keys, const Tensor& values, const Tensor& mask) {
  const int64_t B = q.size(0), T = q.size(1), H = q.size(2), D = q.size(3);
  const int64_t Hkv = keys.size(1), G = H / Hkv, L = keys.size(2), Bm = mask.size(0);
  const bool low_precision = q.scalar_type() != torch::kFloat;
  if (T == 1 && !keys.is_contiguous()) {
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
  PackedWeight packed;  // of the fused weight (Transformer::pack_linear_weights)
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
  // Moves the fused weight to transposed storage and points the parts at row blocks of it again.
  void store_transposed() {
    torch::NoGradGuard no_grad;
    if (!fused()) return;  // the parts no longer alias one storage: leave them as they are
    weight.set_data(weight.t().contiguous().t());
    ptrs.clear();
    int64_t off = 0;
    for (auto& p : parts) {
      const int64_t o = p->weight.size(0);
      p->weight.set_data(weight.narrow(0, off, o));
      ptrs.push_back(p->weight.data_ptr());
      if (bias.defined()) ptrs.push_back(p->bias.data_ptr());
      off += o;
    }
  }
  void pack() {
    torch::NoGradGuard no_grad;  // fused() is false under autograd
    if (fused()) packed = pack_weight(weight);
  }
  // Leaves the packed copy of the fused weight as its only copy, the parts' views emptied too
  // (Transformer::release_packed_originals); the fused path then always runs, on that copy.
  void release() {
    if (!packed.defined() || packed.standalone) return;
    torch::NoGradGuard no_grad;
    release_source(packed, weight);
    for (auto& p : parts) p->weight.set_data(at::empty({0}, weight.options()));
  }
  bool fused() const {
    if (packed.standalone) return true;  // released: the packed copy is all there is
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
      const Tensor y = engine::linear(x, qkv.weight, qkv.bias, &qkv.packed).view({B, T, H + 2 * Hkv, D});
      if (fused_ops_apply(y) && fused_ops_apply(ctx.cos) && fused_ops_apply(ctx.sin)) {
        std::tie(q, k) = rotary_qk(y.narrow(2, 0, H + Hkv), ctx.cos, ctx.sin, H, ctx.scale);
      } else {
        const Tensor qk = rotary(y.narrow(2, 0, H + Hkv), ctx);
        q = qk.narrow(2, 0, H).mul_(ctx.scale);
        k = qk.narrow(2, H, Hkv);
      }
      v = y.narrow(2, H + Hkv, Hkv);
    } else {
      q = rotary((*qkv.parts[0])(x).view({B, T, H, D}), ctx).mul_(ctx.scale);
      k = rotary((*qkv.parts[1])(x).view({B, T, Hkv, D}), ctx);
      v = (*qkv.parts[2])(x).view({B, T, Hkv, D});
    }
    if (ctx.cache == nullptr) return (*o_proj)(attend(q, k.transpose(1, 2), v.transpose(1, 2), ctx.mask));

    ctx.cache->write_rows(layer, k, v, ctx.dst_rows, ctx.src_rows);
    const Tensor kc = ctx.cache->k(layer), vc = ctx.cache->v(layer);  // [Bc, Hkv, C, D]
    if (ctx.decode_rows != nullptr && T == 1 && decode_attention_supported(q.view({B, H, D}), kc, vc))
      return (*o_proj)(decode_attention(q.view({B, H, D}), kc, vc, ctx.mask, *ctx.decode_rows).view({B, 1, H * D}));
    Tensor keys, values;
    if (ctx.slot_begin >= 0) {
      keys = kc.narrow(0, ctx.slot_begin, B).narrow(2, 0, ctx.kv_len);
      values = vc.narrow(0, ctx.slot_begin, B).narrow(2, 0, ctx.kv_len);
    } else {
      keys = kc.narrow(2, 0, ctx.kv_len).index_select(0, ctx.slot_index);
      values = vc.narrow(2, 0, ctx.kv_len).index_select(0, ctx.slot_index);
    }
    if (keys.scalar_type() != q.scalar_type()) {  // a cache stored in another dtype than the compute dtype
      keys = keys.to(q.scalar_type());
      values = values.to(q.scalar_type());
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
      const Tensor y = engine::linear(x, gate_up.weight, {}, &gate_up.packed);
      if (act == Activation::Silu && fused_rows_apply(y)) return (*down_proj)(silu_mul(y, inter));
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
inline Tensor make_mask(const Tensor& pos, int64_t L, int64_t window, c10::ScalarType dtype) {
  const Tensor j = torch::arange(L, torch::kLong).view({1, 1, L});
  const Tensor p = pos.unsqueeze(-1);  // [B|1, T, 1]
  Tensor hidden = j > p;               // [B|1, T, L]
  if (window > 0) hidden.logical_or_(j <= p - window);
  return torch::zeros(hidden.sizes(), torch::TensorOptions().dtype(dtype))
      .masked_fill_(hidden, -std::numeric_limits<double>::infinity());
}

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
    Tensor x = (*embed_tokens)(tokens);
    for (size_t i = 0; i < layers.size(); ++i) x = (*layers[i])(x, ctx, static_cast<int64_t>(i));
    return x;
  }
};

}  // namespace grm::engine::model_detail
