#include "engine/kv_cache.h"

#include <algorithm>
#include <string>

#include <torch/torch.h>

#include "core/error.h"
#include "engine/config.h"

namespace grm::engine {

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

void KVCache::copy_slot(const KVCache& src, int src_slot, int dst_slot) {
  src.check_slot(src_slot);
  check_slot(dst_slot);
  if (src.num_layers_ != num_layers_ || src.num_kv_heads_ != num_kv_heads_ || src.head_dim_ != head_dim_ ||
      src.dtype() != dtype())
    throw Error("KVCache::copy_slot: caches have different layer/head geometry or dtype");
  const int64_t len = src.length(src_slot);
  if (len > capacity_)
    throw Error("KVCache::copy_slot: source length " + std::to_string(len) + " exceeds capacity " +
                std::to_string(capacity_));
  if (&src == this && src_slot == dst_slot) return;
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
