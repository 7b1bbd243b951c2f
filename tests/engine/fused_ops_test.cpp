#include "engine/fused_ops.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "core/error.h"

using namespace grm::engine;

namespace {

// Largest |got - want| / (|want| + 1) over the elements, against a float64 reference.
double rel_err(const at::Tensor& got, const at::Tensor& want) {
  EXPECT_EQ(got.sizes(), want.sizes());
  return ((got.to(torch::kDouble) - want).abs() / (want.abs() + 1.0)).max().item<double>();
}

at::Tensor rms_reference(const at::Tensor& x, const at::Tensor& w, double eps) {
  const at::Tensor xd = x.to(torch::kDouble);
  return xd * at::rsqrt(xd.pow(2).mean(-1, true) + eps) * w.to(torch::kDouble);
}

at::Tensor silu_mul_reference(const at::Tensor& gu, int64_t inter) {
  const at::Tensor g = gu.narrow(-1, 0, inter).to(torch::kDouble), u = gu.narrow(-1, inter, inter).to(torch::kDouble);
  return g / (1 + at::exp(-g)) * u;
}

// x·cos + rotate_half(x)·sin' per head, sin' = cat(-sin, sin) carried in `sin` as the model does.
at::Tensor rotary_reference(const at::Tensor& x, const at::Tensor& cos, const at::Tensor& sin) {
  const at::Tensor xd = x.to(torch::kDouble);
  return xd * cos.to(torch::kDouble) + xd.roll(x.size(-1) / 2, -1) * sin.to(torch::kDouble);
}

bool have_kernels() {
  torch::NoGradGuard no_grad;
  return fused_ops_apply(torch::zeros({2, 8}));
}

}  // namespace

TEST(FusedOps, RmsNormMatchesFloat64) {
  if (!have_kernels()) GTEST_SKIP() << "no AVX2 on this CPU";
  c10::InferenceMode guard;
  torch::manual_seed(1);
  for (const int64_t n : {256, 768, 100, 7}) {  // 100 and 7: tails past the 8-wide loop
    const at::Tensor w = torch::randn({n}) * 0.5 + 1.0;
    const at::Tensor x = torch::randn({3, 5, n}) * 4.0;
    EXPECT_LT(rel_err(rms_norm(x, w, 1e-5), rms_reference(x, w, 1e-5)), 2e-6) << n;
    // Rows spaced wider than n (a narrow of a wider tensor), and size-1 dimensions.
    const at::Tensor wide = torch::randn({4, 1, n + 9});
    const at::Tensor rows = wide.narrow(-1, 3, n);
    const at::Tensor got = rms_norm(rows, w, 1e-6);
    EXPECT_TRUE(got.is_contiguous());
    EXPECT_LT(rel_err(got, rms_reference(rows, w, 1e-6)), 2e-6) << n;
  }
  // Enough rows to be split over the worker pool (prefill-sized): same as row by row.
  const at::Tensor big = torch::randn({700, 256}), wb = torch::randn({256});
  EXPECT_LT(rel_err(rms_norm(big, wb, 1e-5), rms_reference(big, wb, 1e-5)), 2e-6);
  // All zeros: eps keeps it finite.
  const at::Tensor z = rms_norm(torch::zeros({2, 16}), torch::ones({16}), 1e-6);
  EXPECT_EQ(z.abs().sum().item<float>(), 0.0f);
}

TEST(FusedOps, SiluMulMatchesFloat64IncludingLargeInputs) {
  if (!have_kernels()) GTEST_SKIP() << "no AVX2 on this CPU";
  c10::InferenceMode guard;
  torch::manual_seed(2);
  for (const int64_t inter : {704, 2048, 11}) {
    at::Tensor gu = torch::randn({2, inter == 2048 ? 70 : 3, 2 * inter}) * 3.0;  // 140 rows: split over threads
    gu.index_put_({0, 0, 0}, 100.0f);    // e^-g underflows: silu(g) = g
    gu.index_put_({0, 0, 1}, -100.0f);   // e^-g past the clamp: silu(g) → 0
    gu.index_put_({1, 2, 8}, -30.0f);
    const at::Tensor got = silu_mul(gu, inter);
    EXPECT_EQ(got.sizes(), (std::vector<int64_t>{2, gu.size(1), inter}));
    EXPECT_TRUE(got.isfinite().all().item<bool>());
    EXPECT_LT(rel_err(got, silu_mul_reference(gu, inter)), 2e-6) << inter;
  }
}

TEST(FusedOps, RotaryMatchesFloat64AndScalesQueries) {
  if (!have_kernels()) GTEST_SKIP() << "no AVX2 on this CPU";
  c10::InferenceMode guard;
  torch::manual_seed(3);
  for (const int64_t D : {64, 12}) {  // 12: half not a multiple of 8 (scalar path)
    for (const int64_t Bc : {1, 2}) {
      const int64_t B = 2, T = D == 64 ? 200 : 3, H = 4, Hkv = 2;  // 200 positions: split over threads
      // x: the q and k heads of a fused [B, T, H + 2·Hkv, D] product (strided rows).
      const at::Tensor y = torch::randn({B, T, H + 2 * Hkv, D});
      const at::Tensor x = y.narrow(2, 0, H + Hkv);
      // cos / sin as views with a stride-1 last dimension, like the model's rope table selections.
      const at::Tensor table = torch::randn({Bc, T, 1, 2, D});
      const at::Tensor cos = table.select(3, 0), sin = table.select(3, 1);
      const auto [q, k] = rotary_qk(x, cos, sin, H, 0.125);
      EXPECT_TRUE(q.is_contiguous());
      EXPECT_TRUE(k.is_contiguous());
      const at::Tensor want = rotary_reference(x, cos, sin);
      EXPECT_LT(rel_err(q, want.narrow(2, 0, H) * 0.125), 1e-6) << D << " " << Bc;
      EXPECT_LT(rel_err(k, want.narrow(2, H, Hkv)), 1e-6) << D << " " << Bc;
    }
  }
}

TEST(FusedOps, ApplyOnlyToFloat32InferenceAndRejectBadShapes) {
  if (!have_kernels()) GTEST_SKIP() << "no AVX2 on this CPU";
  const at::Tensor x = torch::randn({2, 8});
  {
    torch::AutoGradMode grad(true);
    EXPECT_FALSE(fused_ops_apply(x));  // training keeps the differentiable ATen path
  }
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(fused_ops_apply(x));
  EXPECT_FALSE(fused_ops_apply(x.to(torch::kBFloat16)));
  EXPECT_FALSE(fused_ops_apply(x.t()));  // last dimension not contiguous
  EXPECT_THROW(rms_norm(x, torch::ones({7}), 1e-6), grm::Error);
  EXPECT_THROW(silu_mul(x, 3), grm::Error);
  EXPECT_THROW(rotary_qk(torch::randn({1, 1, 2, 8}), torch::randn({1, 2, 1, 8}), torch::randn({1, 2, 1, 8}), 1, 1.0),
               grm::Error);  // cos for 2 positions, x has 1
  // Rows that are not evenly spaced cannot be walked with one stride: callers see it first.
  const at::Tensor uneven = torch::randn({3, 4, 10}).narrow(1, 0, 2).narrow(2, 0, 8).transpose(0, 1);
  EXPECT_FALSE(fused_rows_apply(uneven));
  EXPECT_TRUE(fused_rows_apply(torch::randn({3, 1, 10}).narrow(2, 0, 8)));
  EXPECT_THROW(rms_norm(uneven, torch::ones({8}), 1e-6), grm::Error);
}
