#include "engine/kv_cache.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include "core/error.h"
#include "engine/config.h"

using grm::engine::KVCache;
using grm::engine::ModelConfig;

namespace {

ModelConfig tiny_config() {
  return ModelConfig::load(std::string(GRM_TEST_DATA) + "/configs/tiny-llama.json");
}

// Fills slot `slot` of every layer with a distinct value pattern up to `len` positions.
void fill_slot(KVCache& c, int slot, int64_t len, float base) {
  c10::InferenceMode guard;
  for (int64_t l = 0; l < c.num_layers(); ++l) {
    c.k(l)[slot].narrow(1, 0, len).fill_(base + static_cast<float>(l));
    c.v(l)[slot].narrow(1, 0, len).fill_(-base - static_cast<float>(l));
  }
  c.set_length(slot, len);
}

}  // namespace

TEST(KVCache, CreateShapesAndLengths) {
  const ModelConfig cfg = tiny_config();
  KVCache c = KVCache::create(cfg, 3, 16, torch::kBFloat16);
  EXPECT_EQ(c.batch(), 3);
  EXPECT_EQ(c.capacity(), 16);
  EXPECT_EQ(c.num_layers(), 2);
  EXPECT_EQ(c.dtype(), torch::kBFloat16);
  EXPECT_EQ(c.k(1).sizes(), (std::vector<int64_t>{3, 2, 16, 16}));
  EXPECT_TRUE(c.k(0).is_contiguous());
  EXPECT_EQ(c.lengths(), (std::vector<int64_t>{0, 0, 0}));
  EXPECT_EQ(c.bytes(), 2 * 2 * 3 * 2 * 16 * 16 * 2);
  EXPECT_THROW(KVCache::create(cfg, 0, 16), grm::Error);
  EXPECT_THROW(KVCache::create(cfg, 1, 0), grm::Error);
}

TEST(KVCache, LengthsAndSlotChecks) {
  KVCache c = KVCache::create(tiny_config(), 2, 8);
  c.set_length(1, 5);
  EXPECT_EQ(c.length(1), 5);
  c.reset(1);
  EXPECT_EQ(c.length(1), 0);
  EXPECT_THROW(c.set_length(2, 1), grm::Error);
  EXPECT_THROW(c.set_length(0, 9), grm::Error);
  EXPECT_THROW(c.length(-1), grm::Error);
  c.set_length(0, 3);
  c.set_length(1, 4);
  c.reset_all();
  EXPECT_EQ(c.lengths(), (std::vector<int64_t>{0, 0}));
}

TEST(KVCache, CopySlotCopiesPrefixAndLength) {
  const ModelConfig cfg = tiny_config();
  KVCache a = KVCache::create(cfg, 2, 8);
  KVCache b = KVCache::create(cfg, 3, 8);
  fill_slot(a, 1, 5, 3.0f);
  b.copy_slot(a, 1, 2);
  EXPECT_EQ(b.length(2), 5);
  for (int64_t l = 0; l < 2; ++l) {
    EXPECT_TRUE(torch::equal(b.k(l)[2].narrow(1, 0, 5), a.k(l)[1].narrow(1, 0, 5)));
    EXPECT_TRUE(torch::equal(b.v(l)[2].narrow(1, 0, 5), a.v(l)[1].narrow(1, 0, 5)));
    EXPECT_EQ(b.k(l)[0].abs().sum().item<float>(), 0.0f);  // other slots untouched
  }
  KVCache other = KVCache::create(cfg, 1, 8, torch::kBFloat16);
  EXPECT_THROW(other.copy_slot(a, 1, 0), grm::Error);  // dtype mismatch
  KVCache small = KVCache::create(cfg, 1, 4);
  EXPECT_THROW(small.copy_slot(a, 1, 0), grm::Error);  // does not fit
  // The first positions only.
  b.copy_slot(a, 1, 1, 3);
  EXPECT_EQ(b.length(1), 3);
  for (int64_t l = 0; l < 2; ++l) {
    EXPECT_TRUE(torch::equal(b.k(l)[1].narrow(1, 0, 3), a.k(l)[1].narrow(1, 0, 3)));
    EXPECT_EQ(b.k(l)[1].narrow(1, 3, 5).abs().sum().item<float>(), 0.0f);  // nothing past them
  }
  small.copy_slot(a, 1, 0, 4);  // fits when only 4 are asked for
  EXPECT_EQ(small.length(0), 4);
  EXPECT_THROW(b.copy_slot(a, 1, 0, 6), grm::Error);  // more than the source holds
  b.copy_slot(b, 2, 2, 2);  // onto itself: the first 2 kept
  EXPECT_EQ(b.length(2), 2);
}

TEST(KVCache, ForkReplicatesIntoManySlots) {
  KVCache c = KVCache::create(tiny_config(), 5, 8);
  fill_slot(c, 0, 6, 1.0f);
  fill_slot(c, 3, 8, 9.0f);  // overwritten by the fork
  c.fork(0, {1, 2, 3, 4});
  for (int s = 1; s < 5; ++s) {
    EXPECT_EQ(c.length(s), 6);
    for (int64_t l = 0; l < 2; ++l) {
      EXPECT_TRUE(torch::equal(c.k(l)[s].narrow(1, 0, 6), c.k(l)[0].narrow(1, 0, 6)));
      EXPECT_TRUE(torch::equal(c.v(l)[s].narrow(1, 0, 6), c.v(l)[0].narrow(1, 0, 6)));
    }
  }
  EXPECT_THROW(c.fork(0, {0, 1}), grm::Error);
  EXPECT_THROW(c.fork(0, {1, 1}), grm::Error);
  EXPECT_THROW(c.fork(0, {7}), grm::Error);
}

TEST(KVCache, WorksInsideAndOutsideInferenceMode) {
  KVCache c;
  {
    c10::InferenceMode guard;
    c = KVCache::create(tiny_config(), 2, 4);
  }
  fill_slot(c, 0, 2, 1.0f);
  c.fork(0, {1});  // outside inference mode, on inference tensors
  EXPECT_EQ(c.length(1), 2);
}

TEST(KVCache, ForkRecordsTheSharedPrefixUntilTheOriginIsRewritten) {
  KVCache c = KVCache::create(tiny_config(), 4, 16);
  fill_slot(c, 0, 5, 1.0f);
  for (int s = 0; s < 4; ++s) {
    EXPECT_EQ(c.prefix_origin(s), s);
    EXPECT_EQ(c.prefix_length(s), 0);
  }
  c.fork(0, {1, 2});
  EXPECT_EQ(c.prefix_origin(1), 0);
  EXPECT_EQ(c.prefix_length(1), 5);
  EXPECT_EQ(c.prefix_length(2), 5);
  c.set_length(0, 7);  // the origin grows (decoding): the first 5 positions are still shared
  EXPECT_EQ(c.prefix_length(1), 5);
  c.set_length(0, 3);  // the origin rolls back: positions 3.. may be rewritten
  EXPECT_EQ(c.prefix_length(1), 3);
  EXPECT_EQ(c.prefix_length(2), 3);
  c.set_length(1, 2);  // a fork rolls back below its shared prefix
  EXPECT_EQ(c.prefix_length(1), 2);
  c.copy_slot(c, 3, 2);  // overwritten from elsewhere: owns its data again
  EXPECT_EQ(c.prefix_origin(2), 2);
  EXPECT_EQ(c.prefix_length(2), 0);
  c.reset_all();
  EXPECT_EQ(c.prefix_origin(1), 1);
  EXPECT_EQ(c.prefix_length(1), 0);
}

// New rows land where dst says, converted exactly as Tensor::to would (round to nearest even), from strided
// views of a fused projection, for every pair of source and cache dtypes; with and without a row selection.
TEST(KVCache, WriteRowsConvertsAndPlacesEachRow) {
  torch::manual_seed(3);
  const ModelConfig cfg = tiny_config();  // 2 layers, 2 kv heads, head dim 16
  const int64_t B = 2, T = 3, Hkv = 2, D = 16, C = 10, Bc = 3;
  for (auto cache_dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf})
    for (auto src_dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
      SCOPED_TRACE(std::string(c10::toString(src_dtype)) + " → " + c10::toString(cache_dtype));
      KVCache c = KVCache::create(cfg, Bc, C, cache_dtype);
      // Values with many mantissa bits and a wide range (rounding matters); keys and values as narrowed views.
      const at::Tensor y = (torch::randn({B, T, 5, D}) * 37.3).to(src_dtype);
      const at::Tensor k = y.narrow(2, 1, Hkv), v = y.narrow(2, 3, Hkv);
      ASSERT_FALSE(k.is_contiguous());
      // Row (b, t, h) → slot b + 1, head h, position 4 + t.
      std::vector<int64_t> dst;
      for (int64_t b = 0; b < B; ++b)
        for (int64_t t = 0; t < T; ++t)
          for (int64_t h = 0; h < Hkv; ++h) dst.push_back(((b + 1) * Hkv + h) * C + 4 + t);
      c.write_rows(1, k, v, dst, {});
      const at::Tensor want_k = k.to(cache_dtype).permute({0, 2, 1, 3}), want_v = v.to(cache_dtype).permute({0, 2, 1, 3});
      EXPECT_TRUE(torch::equal(c.k(1).narrow(0, 1, B).narrow(2, 4, T), want_k));
      EXPECT_TRUE(torch::equal(c.v(1).narrow(0, 1, B).narrow(2, 4, T), want_v));
      EXPECT_EQ(c.k(0).abs().sum().item<double>(), 0.0);  // other layer untouched
      EXPECT_EQ(c.k(1)[0].abs().sum().item<double>(), 0.0);  // other slot untouched
      EXPECT_EQ(c.v(1).narrow(2, 0, 4).abs().sum().item<double>(), 0.0);  // other positions untouched
      EXPECT_EQ(c.lengths(), (std::vector<int64_t>{0, 0, 0}));

      // A selection: only row (b = 1, t = 2, h = 0), i.e. new row (1 * T + 2) * Hkv + 0, into slot 0 position 0.
      KVCache d = KVCache::create(cfg, Bc, C, cache_dtype);
      d.write_rows(0, k, v, {0}, {(1 * T + 2) * Hkv});
      EXPECT_TRUE(torch::equal(d.k(0)[0][0][0], k[1][2][0].to(cache_dtype)));
      EXPECT_TRUE(torch::equal(d.v(0)[0][0][0], v[1][2][0].to(cache_dtype)));
      EXPECT_EQ(d.k(0).abs().sum().item<double>(), k[1][2][0].to(cache_dtype).abs().sum().item<double>());
    }
}

TEST(KVCache, WriteRowsRejectsWhatDoesNotFit) {
  const ModelConfig cfg = tiny_config();
  KVCache c = KVCache::create(cfg, 2, 4);
  const at::Tensor k = torch::zeros({1, 1, 2, 16});
  const int64_t rows = 2 * 2 * 4;
  EXPECT_NO_THROW(c.write_rows(0, k, k, {0, rows - 1}, {}));
  EXPECT_THROW(c.write_rows(0, k, k, {0, rows}, {}), grm::Error);        // destination out of range
  EXPECT_THROW(c.write_rows(0, k, k, {0}, {}), grm::Error);              // one destination for two new rows
  EXPECT_THROW(c.write_rows(0, k, k, {0}, {2}), grm::Error);             // source row out of range
  EXPECT_THROW(c.write_rows(0, k, k, {0, 1}, {0}), grm::Error);          // src and dst lengths differ
  EXPECT_THROW(c.write_rows(2, k, k, {0, 1}, {}), grm::Error);           // layer
  EXPECT_THROW(c.write_rows(0, torch::zeros({1, 1, 2, 8}), torch::zeros({1, 1, 2, 8}), {0, 1}, {}), grm::Error);  // head dim
  EXPECT_THROW(c.write_rows(0, k, torch::zeros({1, 2, 2, 16}), {0, 1}, {}), grm::Error);  // k and v differ
  EXPECT_THROW(c.write_rows(0, k.to(torch::kInt), k.to(torch::kInt), {0, 1}, {}), grm::Error);  // dtype
  const at::Tensor strided = torch::zeros({1, 1, 2, 32}).narrow(3, 0, 32).slice(3, 0, 32, 2);  // last stride 2
  EXPECT_THROW(c.write_rows(0, strided, strided, {0, 1}, {}), grm::Error);
}

// Rows whose length is not a multiple of 8 (the AVX2 conversion's scalar tail) and values at float16's edges:
// the largest finite value, values that round to ±inf, subnormals, ties; the same bits as Tensor::to.
TEST(KVCache, WriteRowsRoundsEdgeValuesLikeTensorTo) {
  ModelConfig cfg = tiny_config();
  cfg.head_dim = 13;
  const std::vector<float> edge = {65504.0f, 65519.0f, 65520.0f, -70000.0f, 1e-8f, -3e-6f, 6.0e-5f, 1.0f + 1.0f / 2048,
                                   1.0f + 3.0f / 2048, 0.0f, -0.0f, 2049.0f, 2051.0f};
  for (auto cache_dtype : {torch::kHalf, torch::kBFloat16}) {
    KVCache c = KVCache::create(cfg, 1, 2, cache_dtype);
    at::Tensor k = torch::tensor(edge).view({1, 1, 1, 13}).expand({1, 1, 2, 13}).contiguous();
    k[0][0][1].mul_(-0.37f);  // second head: other values, other ties
    c.write_rows(0, k, k, {0, 2}, {});  // head 0 position 0, head 1 position 0
    const at::Tensor got = c.k(0)[0].select(1, 0);  // [Hkv, D]
    EXPECT_TRUE(torch::equal(got, k[0][0].to(cache_dtype))) << c10::toString(cache_dtype) << "\n" << got;
  }
}
