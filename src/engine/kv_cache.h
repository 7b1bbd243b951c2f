// Key/value cache for incremental decoding: a fixed number of slots (independent sequences) of a fixed
// capacity (positions), all layers in one allocation.
//
// Layout: one tensor [2, num_layers, batch, n_kv_heads, capacity, head_dim] in the storage dtype (float32,
// bfloat16 or float16: Transformer::kv_dtype(), which need not be the compute dtype);
// k(layer) / v(layer) are contiguous views [batch, n_kv_heads, capacity, head_dim]. Slot s holds positions
// 0 .. length(s)-1; anything beyond is stale and masked out by the model. Slots are reused by reset().
//
// All mutating operations run under c10::InferenceMode, so a cache may be created and used inside or outside
// an InferenceMode scope. A KVCache is move-only (copying would alias the storage).
#pragma once
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>
#include <c10/core/ScalarType.h>

namespace grm::engine {

struct ModelConfig;

class KVCache {
 public:
  KVCache() = default;
  KVCache(KVCache&&) = default;
  KVCache& operator=(KVCache&&) = default;
  KVCache(const KVCache&) = delete;
  KVCache& operator=(const KVCache&) = delete;

  // A zero-filled cache with `batch` empty slots of `capacity` positions each.
  static KVCache create(const ModelConfig& config, int64_t batch, int64_t capacity,
                        c10::ScalarType dtype = c10::kFloat);

  bool defined() const { return kv_.defined(); }
  int64_t batch() const { return static_cast<int64_t>(lengths_.size()); }
  int64_t capacity() const { return capacity_; }
  int64_t num_layers() const { return num_layers_; }
  int64_t num_kv_heads() const { return num_kv_heads_; }
  int64_t head_dim() const { return head_dim_; }
  c10::ScalarType dtype() const { return kv_.scalar_type(); }
  int64_t bytes() const { return kv_.defined() ? kv_.numel() * static_cast<int64_t>(kv_.element_size()) : 0; }

  int64_t length(int slot) const;
  const std::vector<int64_t>& lengths() const { return lengths_; }
  // Sets a slot's length: shrinking forgets the tail (rollback); growing is allowed up to capacity and is
  // used by the model after it has written the new positions.
  void set_length(int slot, int64_t length);
  void reset(int slot) { set_length(slot, 0); }
  void reset_all();

  // [batch, n_kv_heads, capacity, head_dim] views (writes through them change the cache).
  at::Tensor k(int64_t layer) const;
  at::Tensor v(int64_t layer) const;

  // Stores new keys and values of layer `layer`: k and v are [B, T, Hkv, D] (float32, bfloat16 or float16,
  // the last dimension contiguous, other strides free), converted to the cache dtype with round-to-nearest-even
  // (as Tensor::to). The new rows are taken in [b][t][h] order: row i is row src[i] of the B·T·Hkv rows, or
  // row i when src is empty; it goes to row dst[i] of the layer cache viewed as [batch·Hkv·capacity, D].
  // Lengths are not changed (the model sets them). One pass of row copies: index_copy_ cost ~90 µs per call
  // at 32 rows, most of it per-call overhead. Throws grm::Error on a shape, dtype or index that does not fit.
  void write_rows(int64_t layer, const at::Tensor& k, const at::Tensor& v, const std::vector<int64_t>& dst,
                  const std::vector<int64_t>& src);

  // Copies positions 0..positions-1 of src_slot of `src` (same geometry and dtype; may be *this) into
  // dst_slot, whose length becomes `positions`; positions < 0 (the default): all of src_slot's length.
  void copy_slot(const KVCache& src, int src_slot, int dst_slot, int64_t positions = -1);
  // Replicates slot src_slot into every slot of dst_slots (one batched copy over all layers). dst_slots
  // may not contain src_slot and must be distinct.
  void fork(int src_slot, const std::vector<int>& dst_slots);

  // Positions 0 .. prefix_length(slot)-1 of `slot` hold the same keys and values as those of
  // prefix_origin(slot): fork() records it, and anything that may change the origin's positions (shrinking
  // its length, e.g. a restart) clears it. Readers may read the shared positions at the origin, so the k
  // forks of one prompt read its keys once (decode attention), while each slot still owns a full copy.
  int prefix_origin(int slot) const { return origin_[static_cast<size_t>(slot)]; }
  int64_t prefix_length(int slot) const { return shared_[static_cast<size_t>(slot)]; }

  // Throws grm::Error unless `slot` is in [0, batch()).
  void check_slot(int slot) const;

 private:
  at::Tensor kv_;  // [2, L, B, Hkv, C, D]
  std::vector<int64_t> lengths_;
  std::vector<int> origin_;       // see prefix_origin()
  std::vector<int64_t> shared_;   // see prefix_length()
  void unshare(int slot);         // this slot's positions stop being an origin's and having one
  int64_t capacity_ = 0, num_layers_ = 0, num_kv_heads_ = 0, head_dim_ = 0;
};

}  // namespace grm::engine
