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
// row blocks of a fused weight. Those limits exist because the kernel reads W badly in either storage once
// it is out of cache; with a packed copy of W (below, what the generator sets up) it runs every product.
#pragma once
#include <cstdint>

#include <ATen/core/Tensor.h>

namespace grm::engine {

// Row limits for a weight of at most kCachedWeightBytes, which stays in cache from one decode step to the
// next. A larger one comes from DRAM each step, where OpenBLAS (which packs W) does better beyond 4 rows
// (transposed storage) or 2 rows (as loaded, which the kernel here reads once per pair of rows): measured on
// the 100 M model, k = 16 took 24.6 s with the cache-sized limits applied to every weight, 17.3 s with these.
inline constexpr int64_t kCachedWeightBytes = int64_t{4} << 20;
inline constexpr int64_t kMaxRowsTransposed = 16;  // W stored transposed ([K, N] rows)
inline constexpr int64_t kMaxRowsRowMajor = 64;    // W as loaded ([N, K] rows)

// Packed weights, the layout this kernel reads best: panels of kPanelWidth output columns, each [K, 24]
// contiguous and zero-padded past N, so that the strip of W a block of outputs needs streams from memory in
// order (transposed storage reads it as K pieces of 96 bytes, N·4 bytes apart, which the hardware prefetcher
// follows poorly once W is out of cache). With a packed copy the kernel beats OpenBLAS at every row count
// measured, so it serves them all: decode steps of 1-32 rows and prefill (measured on an AVX2 AMD EPYC, 100 M
// model, whole decodes: k = 1 / 8 / 32 in 5.3 / 9.4 / 18.6 s against 8.6 / 18.2 / 27.4 s unpacked; a 2039-token
// prefill ~10 % faster than OpenBLAS). A copy made for inference (Transformer::pack_linear_weights): linear()
// uses it only for the very tensor it was made from (same storage, held so that its memory cannot be reused;
// same offset, sizes and strides) while that is unchanged (same version counter). Inference tensors have no
// version counter: changes made in place to one after packing are not detected.
inline constexpr int64_t kPanelWidth = 24;
struct PackedWeight {
  at::Tensor panels;  // [ceil(N / 24), K, 24] float32, or [ceil(N / 24), ceil(K / 2), 24, 2] bfloat16; undefined: none
  int64_t n = 0;      // N
  int64_t k = 0;      // K
  at::Tensor source;  // the packed weight (an alias: keeps its storage alive)
  int64_t version = 0;
  bool standalone = false;  // its weight's own values were released (release_source): packed_linear() only
  bool defined() const { return panels.defined(); }
  bool bf16() const { return panels.defined() && panels.scalar_type() == at::kBFloat16; }
  bool matches(const at::Tensor& w) const;  // made from w, and w unchanged since
};
// What pack_weight stores. automatic: bfloat16 panels when every value of W is a bfloat16 value (a checkpoint
// stored in bfloat16, like the bundled model), which is lossless (the kernel widens them exactly and runs the
// same FMAs in the same order: same outputs, bit for bit) at half the memory and half the bytes each product
// streams; float32 otherwise. float32: always float32 panels.
enum class PanelFormat { automatic, float32 };
// Whether this CPU runs the kernel (x86-64 with AVX2 + FMA + F16C).
bool packed_kernel_available();
// Packs w [N, K] (float32 on the CPU, either storage); throws grm::Error otherwise.
PackedWeight pack_weight(const at::Tensor& w, PanelFormat format = PanelFormat::automatic);

// Makes p the only copy of its weight's values: drops p's reference to w and empties w (a [0] tensor of its dtype;
// Transformer::release_packed_originals). From then on the product is packed_linear(x, p, bias).
void release_source(PackedWeight& p, at::Tensor& w);
// W [N, K] float32 rebuilt from a packed copy (exact: the panels hold W's values).
at::Tensor unpack_weight(const PackedWeight& packed);
// Rows W[ids] as float32 [..., K] (ids int64 in [0, N)), read from a packed copy: the lookup of a tied embedding
// whose packed copy replaced it. Exact, like unpack_weight.
at::Tensor packed_rows(const PackedWeight& packed, const at::Tensor& ids);
// y = x·Wᵀ + b for the W packed in `packed` (which need not have a source any more): the packed kernel where x and
// bias suit it (float32, no autograd, an AVX2 CPU), else at::linear over unpack_weight(packed).
at::Tensor packed_linear(const at::Tensor& x, const PackedWeight& packed, const at::Tensor& bias = {});

// x [..., K], w [N, K] (any of the two storages), bias [N] or undefined; packed, when given and it matches w
// (and the operands suit the kernel: float32, no autograd, an AVX2 CPU), serves the product.
at::Tensor linear(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias = {},
                  const PackedWeight* packed = nullptr);

// Whether linear() takes its own path for these operands, unpacked or packed (exposed for tests).
bool small_linear_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias = {});
bool packed_linear_applies(const at::Tensor& x, const at::Tensor& w, const at::Tensor& bias, const PackedWeight& packed);

}  // namespace grm::engine
