// y = x·Wᵀ + b, the linear layer of the engine's inference path.
//
// Decoding multiplies a few rows (one per sequence still decoding) by each weight matrix, and OpenBLAS's
// GEMM does that badly at these sizes. Measured on the bundled model's shapes, one thread, warm caches: one
// row took 22-132 µs in OpenBLAS against 6-38 µs in a plain AVX2 + FMA loop that streams W once; at 4-32 rows
// the 4 × 24 register-blocked kernel here reaches 62-78 GFLOP/s against OpenBLAS's 29-68. With cold caches
// (inside a decode step the K/V traffic evicts the weights) OpenBLAS catches up at 32 rows. Inside whole
// decodes of the bundled model, routing products of up to 16 rows here (and up to 64 for W stored as loaded,
// the tied LM head) was fastest of the limits tried (4, 16 and 64 rows); larger weights get smaller limits
// (below). So for float32, an AVX2 + FMA CPU, no autograd and at most those rows, the product runs here,
// its output columns split over engine::parallel_items (each column computed by one thread: the same bits
// with any thread count); anything else (training, bf16, prefill) goes to at::linear. W may be stored
// either way: [N, K] rows as loaded, or transposed (Transformer::store_linear_weights_transposed), including
// row blocks of a fused weight.
#pragma once
#include <ATen/core/Tensor.h>

namespace grm::engine {

// Row limits for a weight of at most kCachedWeightBytes, which stays in cache from one decode step to the
// next. A larger one comes from DRAM each step, where OpenBLAS (which packs W) does better beyond 4 rows
// (transposed storage) or 2 rows (as loaded, which the kernel here reads once per pair of rows): measured on
// the 100 M model, k = 16 took 24.6 s with the cache-sized limits applied to every weight, 17.3 s with these.
inline constexpr int64_t kCachedWeightBytes = int64_t{4} << 20;
inline constexpr int64_t kMaxRowsTransposed = 16;  // W stored transposed ([K, N] rows)
inline constexpr int64_t kMaxRowsRowMajor = 64;    // W as loaded ([N, K] rows)

// x [..., K], w [N, K] (any of the two storages), bias [N] or undefined.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias = {});

// Whether linear() takes its own path for these operands (exposed for tests).
bool small_linear_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias = {});

}  // namespace grm::engine
