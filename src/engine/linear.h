// y = x·Wᵀ + b, the linear layer of the engine's inference path.
//
// With a handful of rows (decoding one to four sequences, or the last unfinished ones of a batch) a float32
// product is a matrix-vector product in all but name, and the BLAS library's GEMM does it badly: measured on
// the bundled model's shapes (one thread, warm caches), OpenBLAS took 22–132 µs for one row where a plain
// AVX2 + FMA loop that streams W once takes 6–38 µs. So for float32, at most kSmallRows rows, an AVX2 + FMA
// CPU and no autograd, the product runs here, its output columns split over engine::parallel_items; anything
// else (training, bf16, larger batches) goes to at::linear. W may be stored either way: [N, K] rows (as
// loaded) or transposed ([K, N] rows, Transformer::store_linear_weights_transposed).
#pragma once
#include <ATen/core/Tensor.h>

namespace grm::engine {

inline constexpr int64_t kSmallRows = 4;

// x [..., K], w [N, K] (any of the two storages), bias [N] or undefined.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias = {});

// Whether linear() takes its own path for these operands (exposed for tests).
bool small_linear_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias = {});

}  // namespace grm::engine
