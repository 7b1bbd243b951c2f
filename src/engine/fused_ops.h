// One-pass float32 kernels for the small per-row operations of a transformer step (RMSNorm, SiLU(gate)·up,
// rotary embedding), for inference.
//
// Composed from ATen ops, each of these is 4-8 kernels and as many passes over the rows (pow, mean, add,
// rsqrt, two muls; roll, mul, addcmul, mul), and a decode step runs them ~10 times per layer. Here each is one
// AVX2 pass per row. Arithmetic: float32 throughout, the same formulas as the ATen path (HF LlamaRMSNorm
// order; silu(g) = g / (1 + e^-g) with e^x from a degree-6 polynomial, relative error < 2e-7), so results
// agree with it to a few float32 ulps (tests), not bit for bit. They apply where fused_ops_apply says so
// (float32 on the CPU, no autograd, an AVX2 CPU); callers keep the ATen path for everything else (training,
// bf16, other machines). Rows are independent: large inputs (prefill) are split over engine::parallel_items.
#pragma once
#include <cstdint>
#include <utility>

#include <ATen/core/Tensor.h>

namespace grm::engine {

// Whether the kernels below run for x: float32 CPU strided tensor, last dimension contiguous, grad mode off,
// an x86-64 CPU with AVX2 + FMA.
bool fused_ops_apply(const at::Tensor& x);

// fused_ops_apply, and the rows of x (its leading dimensions flattened) evenly spaced, as rms_norm and
// silu_mul need (true of contiguous tensors and of a narrowed last dimension).
bool fused_rows_apply(const at::Tensor& x);

// x · rsqrt(mean(x², last dim) + eps) · weight; x [..., n], weight [n] float32. Returns a contiguous tensor.
at::Tensor rms_norm(const at::Tensor& x, const at::Tensor& weight, double eps);

// silu(gu[..., 0:inter]) · gu[..., inter:2·inter] for gu [..., 2·inter] (the fused gate/up product). Returns
// [..., inter], contiguous.
at::Tensor silu_mul(const at::Tensor& gu, int64_t inter);

// Rotary embedding of the query and key heads of x [B, T, H + Hkv, D] (last dimension contiguous, other strides
// free): x·cos + roll(x, D/2)·sin per head, cos and sin [B or 1, T, 1, D] (sin carrying rotate_half's sign,
// PassContext), the H query heads then multiplied by q_scale. Returns q [B, T, H, D] and k [B, T, Hkv, D],
// both contiguous. D must be even.
std::pair<at::Tensor, at::Tensor> rotary_qk(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin,
                                            int64_t H, double q_scale);

}  // namespace grm::engine
