#include "engine/linear.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <string>

#include "core/error.h"
#include "engine/worker_pool.h"


using grm::engine::small_linear_applies;

namespace {

// The product in float64, from the same float32 values.
at::Tensor reference(const at::Tensor& x, const at::Tensor& w, const at::Tensor& b) {
  at::Tensor y = at::matmul(x.to(torch::kDouble), w.to(torch::kDouble).t());
  return b.defined() ? y + b.to(torch::kDouble) : y;
}

void expect_close(const at::Tensor& got, const at::Tensor& want, const std::string& label) {
  ASSERT_EQ(got.sizes(), want.sizes()) << label;
  ASSERT_EQ(got.scalar_type(), torch::kFloat) << label;
  const double err = (got.to(torch::kDouble) - want).abs().max().item<double>();
  const double scale = want.abs().max().item<double>() + 1.0;
  EXPECT_LT(err / scale, 1e-5) << label << ": max error " << err;
}

// One product to check: x [1, M, K] (or [M, 1, K]), w [N, K] in either storage, bias or none.
struct Case {
  at::Tensor x, w, b;
  int64_t M;
  bool transposed;
  std::string label;
};

// Runs check on one and two threads for (K, N) the model's shapes, N with 24-, 8- and 1-column tails (partial
// 24-column panels when packed), K not a multiple of 8; each of the row counts; both storages of W; with and
// without bias. rows_first: x is [M, 1, K] rather than [1, M, K].
template <typename Check>
void for_each_case(const std::vector<int64_t>& row_counts, bool rows_first, Check check) {
  const std::vector<std::pair<int64_t, int64_t>> shapes{{256, 768}, {704, 256}, {64, 45}, {37, 19}, {8, 1}, {3, 30}};
  for (int threads : {1, 2}) {
    grm::engine::set_worker_threads(threads);
    for (auto [K, N] : shapes)
      for (int64_t M : row_counts)
        for (bool transposed : {false, true})
          for (bool with_bias : {false, true}) {
            Case c;
            c.x = rows_first ? torch::randn({M, 1, K}) : torch::randn({1, M, K});
            c.w = torch::randn({N, K});
            if (transposed) c.w = c.w.t().contiguous().t();
            if (with_bias) c.b = torch::randn({N});
            c.M = M;
            c.transposed = transposed;
            c.label = std::to_string(threads) + " threads, M " + std::to_string(M) + ", K " + std::to_string(K) +
                      ", N " + std::to_string(N) + (transposed ? ", transposed" : "") + (with_bias ? ", bias" : "");
            check(c);
          }
  }
  grm::engine::set_worker_threads(0);  // the default
}

}  // namespace

TEST(SmallLinear, MatchesTheReferenceForRowBlocksStoragesAndTails) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(3);
  for_each_case({1, 2, 3, 4, 5, 6, 7, 9, 16, 33, 64}, false, [](const Case& c) {
    if (c.M > (c.transposed ? grm::engine::kMaxRowsTransposed : grm::engine::kMaxRowsRowMajor)) return;
    ASSERT_TRUE(small_linear_applies(c.x, c.w, c.b)) << c.label;
    expect_close(grm::engine::linear(c.x, c.w, c.b), reference(c.x, c.w, c.b), c.label);
  });
}

TEST(SmallLinear, ReadsRowBlocksOfAFusedTransposedWeight) {
  torch::NoGradGuard no_grad;
  const at::Tensor fused = torch::randn({3 * 40, 64}).t().contiguous().t();  // [120, 64], transposed storage
  const at::Tensor part = fused.narrow(0, 40, 40), x = torch::randn({2, 64});
  ASSERT_TRUE(small_linear_applies(x, part));
  expect_close(grm::engine::linear(x, part), reference(x, part, {}), "middle block");
}

TEST(SmallLinear, LeavesOtherCasesToATen) {
  const at::Tensor w = torch::randn({16, 32}), x1 = torch::randn({1, 32});
  {
    torch::NoGradGuard no_grad;
    EXPECT_FALSE(small_linear_applies(torch::randn({grm::engine::kMaxRowsRowMajor + 1, 32}), w));
    const at::Tensor wt = w.t().contiguous().t();
    EXPECT_TRUE(small_linear_applies(torch::randn({grm::engine::kMaxRowsTransposed, 32}), wt));
    EXPECT_FALSE(small_linear_applies(torch::randn({grm::engine::kMaxRowsTransposed + 1, 32}), wt));
    EXPECT_FALSE(small_linear_applies(x1.to(torch::kBFloat16), w.to(torch::kBFloat16)));
    const at::Tensor strided = torch::randn({32, 64}).slice(0, 0, 32, 2).slice(1, 0, 64, 2);  // [16, 32]
    EXPECT_FALSE(small_linear_applies(x1, strided)) << "a weight strided both ways";
    expect_close(grm::engine::linear(x1, strided), reference(x1, strided, {}), "strided weight via at::linear");
    const at::Tensor x65 = torch::randn({grm::engine::kMaxRowsRowMajor + 1, 32});
    expect_close(grm::engine::linear(x65, w), reference(x65, w, {}), "65 rows via at::linear");
  }
  // Autograd needs at::linear's graph: training never takes the small path, and gradients flow.
  const at::Tensor wg = torch::randn({16, 32}).requires_grad_(true);
  EXPECT_FALSE(small_linear_applies(x1, wg));
  grm::engine::linear(x1, wg).sum().backward();
  ASSERT_TRUE(wg.grad().defined());
  expect_close(wg.grad(), x1.to(torch::kDouble).expand({16, 32}).contiguous(), "gradient");
}

TEST(SmallLinear, WeightsTooLargeForTheCacheTakeFewerRows) {
  torch::NoGradGuard no_grad;
  const int64_t K = 1024, N = grm::engine::kCachedWeightBytes / 4 / K + 8;  // just over the limit
  const at::Tensor w = torch::randn({N, K}), wt = w.t().contiguous().t();
  EXPECT_TRUE(small_linear_applies(torch::randn({4, K}), wt));
  EXPECT_FALSE(small_linear_applies(torch::randn({5, K}), wt));
  EXPECT_TRUE(small_linear_applies(torch::randn({2, K}), w));
  EXPECT_FALSE(small_linear_applies(torch::randn({3, K}), w));
  const at::Tensor x = torch::randn({4, K});
  expect_close(grm::engine::linear(x, wt), reference(x, wt, {}), "large transposed weight, 4 rows");
}

// Weights whose rows are further apart than their length (a block of a wider matrix), inputs that are not
// contiguous, and empty outputs.
TEST(SmallLinear, StridedWeightsNonContiguousInputsAndEmptyOutputs) {
  torch::NoGradGuard no_grad;
  const at::Tensor wide = torch::randn({45, 72});
  const at::Tensor rowmajor = wide.narrow(1, 8, 64);  // [45, 64], row stride 72
  const at::Tensor fused_t = torch::randn({3 * 45, 64}).t().contiguous().t();
  const at::Tensor transposed = fused_t.narrow(0, 45, 45);  // [45, 64], k-rows 135 apart, 21 columns of tail
  const at::Tensor x = torch::randn({64, 3}).t();           // 3 rows, not contiguous
  for (const at::Tensor& w : {rowmajor, transposed}) {
    ASSERT_TRUE(small_linear_applies(x, w));
    expect_close(grm::engine::linear(x, w), reference(x, w, {}), w.stride(1) == 1 ? "row stride 72" : "k stride 135");
  }
  const at::Tensor none = torch::randn({0, 64});
  EXPECT_EQ(grm::engine::linear(x, none).sizes(), (std::vector<int64_t>{3, 0}));
}

// Each output column is computed by one thread whatever the split: the same bits with 1, 2 or 3 threads.
TEST(SmallLinear, SameBitsWithAnyNumberOfThreads) {
  torch::NoGradGuard no_grad;
  const at::Tensor w = torch::randn({1408, 256}).t().contiguous().t(), x = torch::randn({8, 256});
  const at::Tensor b = torch::randn({1408});
  grm::engine::set_worker_threads(1);
  const at::Tensor one = grm::engine::linear(x, w, b);
  for (int threads : {2, 3}) {
    grm::engine::set_worker_threads(threads);
    EXPECT_TRUE(torch::equal(grm::engine::linear(x, w, b), one)) << threads << " threads";
  }
  grm::engine::set_worker_threads(0);
}

// Packed weights (pack_weight): decode and prefill row counts, N with partial last panels, both
// storages of the source weight, with and without bias, one and two threads.
TEST(PackedLinear, MatchesTheReferenceForRowBlocksAndPartialPanels) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(5);
  for_each_case({1, 3, 4, 5, 17, 32, 33, 64, 130}, true, [](const Case& c) {
    const auto packed = grm::engine::pack_weight(c.w);
    ASSERT_EQ(packed.panels.sizes(), (std::vector<int64_t>{(c.w.size(0) + 23) / 24, c.w.size(1), 24})) << c.label;
    ASSERT_TRUE(grm::engine::packed_linear_applies(c.x, c.w, c.b, packed)) << c.label;
    expect_close(grm::engine::linear(c.x, c.w, c.b, &packed), reference(c.x, c.w, c.b), c.label);
  });
}

// Weights whose values are all bfloat16 values (a bfloat16 checkpoint) are packed as bfloat16 panels, and the
// products are the float32 panels' to the bit: decode and prefill row counts, K odd and even, partial panels.
// One value that is not a bfloat16 value keeps float32 panels.
TEST(PackedLinear, BFloat16PanelsGiveTheFloat32PanelsBits) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(6);
  for_each_case({1, 2, 3, 4, 5, 8, 15, 16, 17, 32, 33, 130}, true, [](const Case& c) {
    const at::Tensor w = c.w.to(torch::kBFloat16).to(torch::kFloat);
    const at::Tensor wt = c.transposed ? w.t().contiguous().t() : w;
    const auto narrow = grm::engine::pack_weight(wt);
    const auto wide = grm::engine::pack_weight(wt, grm::engine::PanelFormat::float32);
    ASSERT_TRUE(narrow.bf16()) << c.label;
    ASSERT_FALSE(wide.bf16()) << c.label;
    ASSERT_EQ(narrow.panels.numel(), (wt.size(0) + 23) / 24 * 24 * ((wt.size(1) + 1) / 2 * 2)) << c.label;
    ASSERT_TRUE(grm::engine::packed_linear_applies(c.x, wt, c.b, narrow)) << c.label;
    const at::Tensor got = grm::engine::linear(c.x, wt, c.b, &narrow);
    EXPECT_TRUE(torch::equal(got, grm::engine::linear(c.x, wt, c.b, &wide))) << c.label;
    expect_close(got, reference(c.x, wt, c.b), c.label);
  });
  at::Tensor w = torch::randn({48, 32}).to(torch::kBFloat16).to(torch::kFloat);
  w[7][5] = 1.0f + 1.0f / 1024;  // needs more than bfloat16's 8 significant bits
  EXPECT_FALSE(grm::engine::pack_weight(w).bf16());
}

// A packed copy whose weight was released (release_source) serves alone: the same bits as before for both panel
// formats, unpack_weight and packed_rows give W and its rows back exactly, and operands the kernel does not take (autograd on, bfloat16 x)
// go to at::linear over the unpacked W.
TEST(PackedLinear, ReleasedWeightIsServedByItsPackedCopy) {
  torch::NoGradGuard no_grad;
  torch::manual_seed(8);
  for (bool bf16 : {false, true})
    for (auto [N, K] : std::vector<std::pair<int64_t, int64_t>>{{768, 256}, {45, 37}}) {
      const std::string label = std::string(bf16 ? "bf16 " : "f32 ") + std::to_string(N) + "x" + std::to_string(K);
      at::Tensor w = torch::randn({N, K});
      if (bf16) w = w.to(torch::kBFloat16).to(torch::kFloat);
      const at::Tensor original = w.clone(), b = torch::randn({N});
      auto packed = grm::engine::pack_weight(w);
      ASSERT_EQ(packed.bf16(), bf16) << label;
      for (int64_t rows : {1, 8, 33}) {
        const at::Tensor x = torch::randn({rows, K});
        const at::Tensor y = grm::engine::linear(x, w, b, &packed);
        at::Tensor wr = w.clone();
        auto fresh = grm::engine::pack_weight(wr);
        grm::engine::release_source(fresh, wr);
        EXPECT_EQ(wr.numel(), 0) << label;
        EXPECT_TRUE(fresh.standalone) << label;
        EXPECT_FALSE(fresh.matches(wr)) << label;
        EXPECT_TRUE(torch::equal(grm::engine::linear(x, wr, b, &fresh), y)) << label << ", " << rows << " rows";
        EXPECT_TRUE(torch::equal(grm::engine::packed_linear(x, fresh, b), y)) << label << ", " << rows << " rows";
        EXPECT_TRUE(torch::equal(grm::engine::unpack_weight(fresh), original)) << label;
        const at::Tensor ids = torch::tensor(std::vector<int64_t>{0, N - 1, 23, 24, N / 2, 0}, torch::kLong).view({2, 3});
        EXPECT_TRUE(torch::equal(grm::engine::packed_rows(fresh, ids), at::embedding(original, ids))) << label;
        EXPECT_THROW(grm::engine::packed_rows(fresh, torch::tensor({N}, torch::kLong)), grm::Error) << label;
        {
          torch::AutoGradMode grad(true);
          expect_close(grm::engine::packed_linear(x, fresh, b), reference(x, original, b), label + ", autograd");
        }
        const at::Tensor yb = grm::engine::packed_linear(x.to(torch::kBFloat16), fresh, b);
        EXPECT_EQ(yb.scalar_type(), torch::kBFloat16) << label;
        EXPECT_LT((yb.to(torch::kDouble) - reference(x.to(torch::kBFloat16).to(torch::kFloat), original, b)).abs().max().item<double>(),
                  0.05 * (reference(x, original, b).abs().max().item<double>() + 1))
            << label << ", bf16 x";
      }
    }
  at::Tensor w = torch::randn({8, 8});
  auto packed = grm::engine::pack_weight(w);
  at::Tensor other = torch::randn({8, 8});
  EXPECT_THROW(grm::engine::release_source(packed, other), grm::Error) << "not its weight";
}

// A packed copy serves only the weight it was made from, unchanged; otherwise linear() takes another path and
// the result is still right.
TEST(PackedLinear, FallsBackWhenTheWeightChangesOrTooManyRows) {
  torch::NoGradGuard no_grad;
  at::Tensor w = torch::randn({40, 32});
  const auto packed = grm::engine::pack_weight(w);
  const at::Tensor x = torch::randn({5, 32});
  EXPECT_TRUE(grm::engine::packed_linear_applies(x, w, {}, packed));
  const at::Tensor other = w.clone();
  EXPECT_FALSE(grm::engine::packed_linear_applies(x, other, {}, packed)) << "another tensor";
  EXPECT_FALSE(grm::engine::packed_linear_applies(x, w.narrow(0, 0, 39), {}, packed)) << "another shape";
  const at::Tensor square = torch::randn({32, 32});
  const auto square_packed = grm::engine::pack_weight(square);
  EXPECT_FALSE(grm::engine::packed_linear_applies(x, square.t(), {}, square_packed)) << "its transpose";
  expect_close(grm::engine::linear(x, square.t(), {}, &square_packed), reference(x, square.t(), {}), "transpose");
  w.mul_(2);  // changed in place: the copy is stale
  EXPECT_FALSE(grm::engine::packed_linear_applies(x, w, {}, packed));
  expect_close(grm::engine::linear(x, w, {}, &packed), reference(x, w, {}), "changed weight");
  const auto repacked = grm::engine::pack_weight(w);
  EXPECT_TRUE(grm::engine::packed_linear_applies(x, w, {}, repacked));
  {
    torch::AutoGradMode grad(true);
    EXPECT_FALSE(grm::engine::packed_linear_applies(x, w, {}, repacked)) << "autograd takes at::linear";
  }
  EXPECT_THROW(grm::engine::pack_weight(w.to(torch::kBFloat16)), grm::Error);
  EXPECT_THROW(grm::engine::pack_weight(torch::randn({8})), grm::Error);
}

TEST(PackedLinear, SameBitsWithAnyNumberOfThreads) {
  torch::NoGradGuard no_grad;
  const at::Tensor w = torch::randn({1408, 256}).t().contiguous().t(), x = torch::randn({32, 256});
  const at::Tensor b = torch::randn({1408});
  const auto packed = grm::engine::pack_weight(w);
  grm::engine::set_worker_threads(1);
  const at::Tensor one = grm::engine::linear(x, w, b, &packed);
  for (int threads : {2, 3}) {
    grm::engine::set_worker_threads(threads);
    EXPECT_TRUE(torch::equal(grm::engine::linear(x, w, b, &packed), one)) << threads << " threads";
  }
  grm::engine::set_worker_threads(0);
}
