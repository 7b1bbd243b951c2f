#include "engine/kv_cache.h"

#include <algorithm>
#include <cstring>
#include <string>
#include <type_traits>

#include <torch/torch.h>

#if defined(__x86_64__)
#include "engine/avx2.h"
#endif

#include "core/error.h"
#include "engine/config.h"

namespace grm::engine {

namespace {

#if defined(__x86_64__)
GRM_AVX2_TARGET void float_to_half_avx2(const float* s, c10::Half* d, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm_storeu_si128(reinterpret_cast<__m128i*>(d + i),
                     _mm256_cvtps_ph(_mm256_loadu_ps(s + i), _MM_FROUND_TO_NEAREST_INT));
  for (; i < n; ++i) d[i] = c10::Half(s[i]);
}
#endif

// d[0, n) = s[0, n) converted (round to nearest even, as c10's conversions and Tensor::to).
template <typename S, typename T>
void convert_row(const S* s, T* d, int64_t n) {
  if constexpr (std::is_same_v<S, T>) {
    std::memcpy(d, s, static_cast<size_t>(n) * sizeof(T));
  } else {
#if defined(__x86_64__)
    if constexpr (std::is_same_v<S, float> && std::is_same_v<T, c10::Half>) {
      if (avx2::cpu_has_avx2()) return float_to_half_avx2(s, d, n);
    }
#endif
    for (int64_t i = 0; i < n; ++i) d[i] = T(static_cast<float>(s[i]));
  }
}

template <typename S, typename T>
void write_typed(const at::Tensor& x, const at::Tensor& layer, const std::vector<int64_t>& dst,
                 const std::vector<int64_t>& src) {
  const int64_t T1 = x.size(1), H = x.size(2), D = x.size(3);
  const int64_t s0 = x.stride(0), s1 = x.stride(1), s2 = x.stride(2);
  const S* xp = x.data_ptr<S>();
  T* out = layer.data_ptr<T>();  // contiguous [rows, D]
  for (size_t i = 0; i < dst.size(); ++i) {
    const int64_t r = src.empty() ? static_cast<int64_t>(i) : src[i];
    const int64_t b = r / (T1 * H), t = r / H % T1, h = r % H;
    convert_row(xp + b * s0 + t * s1 + h * s2, out + dst[i] * D, D);
  }
}

template <typename T>
void write_to(const at::Tensor& x, const at::Tensor& layer, const std::vector<int64_t>& dst,
              const std::vector<int64_t>& src) {
  switch (x.scalar_type()) {
    case at::kFloat: return write_typed<float, T>(x, layer, dst, src);
    case at::kBFloat16: return write_typed<c10::BFloat16, T>(x, layer, dst, src);
    case at::kHalf: return write_typed<c10::Half, T>(x, layer, dst, src);
    default: throw Error("KVCache::write_rows: keys and values must be float32, bfloat16 or float16");
  }
}

}  // namespace

KVCache KVCache::create(const ModelConfig& config, int64_t batch, int64_t capacity, c10::ScalarType dtype) {
  if (batch <= 0) throw Error("KVCache: batch must be positive, got " + std::to_string(batch));
  if (capacity <= 0) throw Error("KVCache: capacity must be positive, got " + std::to_string(capacity));
  if (dtype != torch::kFloat32 && dtype != torch::kBFloat16 && dtype != torch::kFloat16)
    throw Error("KVCache: dtype must be float32, bfloat16 or float16");
  c10::InferenceMode guard;
  KVCache c;
  c.capacity_ = capacity;
  c.num_layers_ = config.num_hidden_layers;
  c.num_kv_heads_ = config.num_key_value_heads;
  c.head_dim_ = config.head_dim;
  c.kv_ = torch::zeros({2, c.num_layers_, batch, c.num_kv_heads_, capacity, c.head_dim_},
                       torch::TensorOptions().dtype(dtype));
  c.lengths_.assign(static_cast<size_t>(batch), 0);
  c.shared_.assign(static_cast<size_t>(batch), 0);
  for (int s = 0; s < static_cast<int>(batch); ++s) c.origin_.push_back(s);
  return c;
}

void KVCache::check_slot(int slot) const {
  if (slot < 0 || slot >= batch())
    throw Error("KVCache: slot " + std::to_string(slot) + " out of range [0, " + std::to_string(batch()) + ")");
}

int64_t KVCache::length(int slot) const {
  check_slot(slot);
  return lengths_[static_cast<size_t>(slot)];
}

void KVCache::set_length(int slot, int64_t length) {
  check_slot(slot);
  if (length < 0 || length > capacity_)
    throw Error("KVCache: length " + std::to_string(length) + " outside [0, " + std::to_string(capacity_) + "]");
  if (length < lengths_[static_cast<size_t>(slot)]) {  // its tail may be rewritten: forks stop reading it
    for (size_t s = 0; s < lengths_.size(); ++s)
      if (origin_[s] == slot) shared_[s] = std::min(shared_[s], length);
    shared_[static_cast<size_t>(slot)] = std::min(shared_[static_cast<size_t>(slot)], length);
  }
  lengths_[static_cast<size_t>(slot)] = length;
}

void KVCache::unshare(int slot) {
  for (size_t s = 0; s < lengths_.size(); ++s)
    if (origin_[s] == slot) shared_[s] = 0;
  origin_[static_cast<size_t>(slot)] = slot;
  shared_[static_cast<size_t>(slot)] = 0;
}

void KVCache::reset_all() {
  std::fill(lengths_.begin(), lengths_.end(), 0);
  std::fill(shared_.begin(), shared_.end(), 0);
  for (size_t s = 0; s < origin_.size(); ++s) origin_[s] = static_cast<int>(s);
}

at::Tensor KVCache::k(int64_t layer) const { return kv_[0][layer]; }
at::Tensor KVCache::v(int64_t layer) const { return kv_[1][layer]; }

void KVCache::write_rows(int64_t layer, const at::Tensor& k, const at::Tensor& v, const std::vector<int64_t>& dst,
                         const std::vector<int64_t>& src) {
  if (layer < 0 || layer >= num_layers_)
    throw Error("KVCache::write_rows: layer " + std::to_string(layer) + " out of range");
  const int64_t rows = batch() * num_kv_heads_ * capacity_;
  for (const at::Tensor* x : {&k, &v}) {
    if (!x->defined() || x->dim() != 4 || x->size(2) != num_kv_heads_ || x->size(3) != head_dim_ ||
        x->stride(3) != 1 || !x->device().is_cpu() || x->sizes() != k.sizes())
      throw Error("KVCache::write_rows: keys and values must be CPU tensors [B, T, " + std::to_string(num_kv_heads_) +
                  ", " + std::to_string(head_dim_) + "] with a contiguous last dimension");
    const auto t = x->scalar_type();
    if (t != at::kFloat && t != at::kBFloat16 && t != at::kHalf)  // checked before anything is written
      throw Error("KVCache::write_rows: keys and values must be float32, bfloat16 or float16");
  }
  const int64_t n_new = k.size(0) * k.size(1) * k.size(2);
  if (!src.empty() && src.size() != dst.size()) throw Error("KVCache::write_rows: src and dst differ in length");
  if (src.empty() && static_cast<int64_t>(dst.size()) != n_new)
    throw Error("KVCache::write_rows: " + std::to_string(dst.size()) + " destination rows for " +
                std::to_string(n_new) + " new rows");
  for (int64_t d : dst)
    if (d < 0 || d >= rows) throw Error("KVCache::write_rows: destination row " + std::to_string(d) + " out of range");
  for (int64_t r : src)
    if (r < 0 || r >= n_new) throw Error("KVCache::write_rows: source row " + std::to_string(r) + " out of range");
  c10::InferenceMode guard;
  for (int which = 0; which < 2; ++which) {
    const at::Tensor layer_rows = kv_[which][layer];  // contiguous [B, Hkv, C, D]
    const at::Tensor& x = which == 0 ? k : v;
    switch (dtype()) {
      case at::kFloat: write_to<float>(x, layer_rows, dst, src); break;
      case at::kBFloat16: write_to<c10::BFloat16>(x, layer_rows, dst, src); break;
      default: write_to<c10::Half>(x, layer_rows, dst, src); break;
    }
  }
}

void KVCache::copy_slot(const KVCache& src, int src_slot, int dst_slot, int64_t positions) {
  src.check_slot(src_slot);
  check_slot(dst_slot);
  if (src.num_layers_ != num_layers_ || src.num_kv_heads_ != num_kv_heads_ || src.head_dim_ != head_dim_ ||
      src.dtype() != dtype())
    throw Error("KVCache::copy_slot: caches have different layer/head geometry or dtype");
  if (positions > src.length(src_slot))
    throw Error("KVCache::copy_slot: " + std::to_string(positions) + " positions asked of a slot of length " +
                std::to_string(src.length(src_slot)));
  const int64_t len = positions < 0 ? src.length(src_slot) : positions;
  if (len > capacity_)
    throw Error("KVCache::copy_slot: source length " + std::to_string(len) + " exceeds capacity " +
                std::to_string(capacity_));
  if (&src == this && src_slot == dst_slot) {
    set_length(dst_slot, len);
    return;
  }
  unshare(dst_slot);
  c10::InferenceMode guard;
  if (len > 0) {
    // [2, L, Hkv, len, D] on both sides; one strided copy for all layers.
    kv_.select(2, dst_slot).narrow(3, 0, len).copy_(src.kv_.select(2, src_slot).narrow(3, 0, len));
  }
  lengths_[static_cast<size_t>(dst_slot)] = len;
}

void KVCache::fork(int src_slot, const std::vector<int>& dst_slots) {
  check_slot(src_slot);
  std::vector<int64_t> idx;
  std::vector<bool> seen(lengths_.size(), false);
  for (int d : dst_slots) {
    check_slot(d);
    if (d == src_slot) throw Error("KVCache::fork: destination slots include the source slot");
    if (seen[static_cast<size_t>(d)]) throw Error("KVCache::fork: duplicate destination slot " + std::to_string(d));
    seen[static_cast<size_t>(d)] = true;
    idx.push_back(d);
  }
  if (idx.empty()) return;
  const int64_t len = length(src_slot);
  c10::InferenceMode guard;
  if (len > 0) {
    const int64_t n = static_cast<int64_t>(idx.size());
    auto prefix = kv_.narrow(4, 0, len);                       // [2, L, B, Hkv, len, D]
    auto one = prefix.select(2, src_slot).clone().unsqueeze(2);  // [2, L, 1, Hkv, len, D]
    auto sizes = one.sizes().vec();
    sizes[2] = n;
    prefix.index_copy_(2, torch::tensor(idx, torch::kLong), one.expand(sizes));
  }
  for (int d : dst_slots) {
    unshare(d);
    lengths_[static_cast<size_t>(d)] = len;
    origin_[static_cast<size_t>(d)] = src_slot;
    shared_[static_cast<size_t>(d)] = len;
  }
}

}  // namespace grm::engine
