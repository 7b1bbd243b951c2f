// Attention of one new position per sequence over its KV cache (the decode step), on the CPU.
//
// A batched matmul over [B, Hkv] tiny matrices spends most of a decode step in per-batch overhead (measured:
// ~680 µs per bf16 bmm call at B = 32, 550 positions; 64% of the step). This kernel instead walks each
// (sequence, kv head) once: every K and V row is read one time for all G query heads of its group, in
// float32 arithmetic, and positions masked with -inf (the unused tail of the cache) are not read at all.
#pragma once
#include <cstdint>
#include <vector>

#include <ATen/core/Tensor.h>

namespace grm::engine {

// Which cache positions a row reads: positions l < shared[b] at slot origin[b], the rest at slot slot[b]
// (KVCache::prefix_origin / prefix_length), so the forks of one prompt read its keys from one place.
struct DecodeRows {
  std::vector<int64_t> slot, origin, shared;
};

// q [B, H, D] (already scaled; float32 or bfloat16); kc / vc the layer's whole cache [Bc, Hkv, C, D]
// (contiguous last dimension; float32, bfloat16 or float16, both the same); mask [Bm, L] additive with
// Bm ∈ {1, B}: row b reads positions l < L that the mask does not hide (-inf). H must be a multiple of Hkv.
// Arithmetic is float32 whatever the dtypes. Returns [B, H * D] in q's dtype.
//
// Two implementations compute the same thing: `best` uses AVX2 + FMA + F16C intrinsics where the CPU has them
// (x86-64, head dim a multiple of 8) and the portable, compiler-vectorized loops elsewhere; `portable` forces the latter
// (tests compare both with a float64 reference).
enum class AttentionKernel { best, portable };
// decode_attention_supported needs the head dim to be a multiple of this.
inline constexpr int64_t kDecodeAttentionHeadDimMultiple = 16;
bool decode_attention_supported(const at::Tensor& q, const at::Tensor& kc, const at::Tensor& vc);
at::Tensor decode_attention(const at::Tensor& q, const at::Tensor& kc, const at::Tensor& vc, const at::Tensor& mask,
                            const DecodeRows& rows, AttentionKernel kernel = AttentionKernel::best);

}  // namespace grm::engine
