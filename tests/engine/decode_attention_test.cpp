#include "engine/decode_attention.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>
#include <string>

#include "core/error.h"
#include "engine/worker_pool.h"

using grm::engine::AttentionKernel;
using grm::engine::decode_attention;
using grm::engine::DecodeRows;

namespace {

// softmax(q·Kᵀ + mask)·V per row and query head, in float64, reading row b's positions l < shared[b] at
// slot origin[b] and the others at slot[b].
at::Tensor reference(const at::Tensor& q, const at::Tensor& kc, const at::Tensor& vc, const at::Tensor& mask,
                     const DecodeRows& rows) {
  const int64_t B = q.size(0), H = q.size(1), D = q.size(2), Hkv = kc.size(1), L = mask.size(1), G = H / Hkv;
  at::Tensor out = torch::zeros({B, H, D}, torch::kDouble);
  for (int64_t b = 0; b < B; ++b) {
    const auto r = static_cast<size_t>(b);
    at::Tensor k = kc[rows.slot[r]].narrow(1, 0, L).to(torch::kDouble).clone();  // [Hkv, L, D]
    at::Tensor v = vc[rows.slot[r]].narrow(1, 0, L).to(torch::kDouble).clone();
    if (rows.shared[r] > 0) {
      k.narrow(1, 0, rows.shared[r]).copy_(kc[rows.origin[r]].narrow(1, 0, rows.shared[r]));
      v.narrow(1, 0, rows.shared[r]).copy_(vc[rows.origin[r]].narrow(1, 0, rows.shared[r]));
    }
    for (int64_t h = 0; h < H; ++h) {
      const at::Tensor s = torch::mv(k[h / G], q[b][h].to(torch::kDouble)) + mask[mask.size(0) == 1 ? 0 : b].to(torch::kDouble);
      out[b][h] = torch::mv(v[h / G].t(), torch::softmax(s, 0));
    }
  }
  return out.view({B, H * D});
}

// What KVCache::fork guarantees: a fork holds its shared positions too.
void copy_shared_prefixes(const at::Tensor& kc, const at::Tensor& vc, const DecodeRows& rows) {
  for (size_t r = 0; r < rows.slot.size(); ++r) {
    kc[rows.slot[r]].narrow(1, 0, rows.shared[r]).copy_(kc[rows.origin[r]].narrow(1, 0, rows.shared[r]));
    vc[rows.slot[r]].narrow(1, 0, rows.shared[r]).copy_(vc[rows.origin[r]].narrow(1, 0, rows.shared[r]));
  }
}

// Both kernels agree with the float64 reference (tolerance by the output's dtype: the reference reads the
// same stored values, and the kernels compute in float32 whatever the cache holds).
void expect_kernels_match_reference(const at::Tensor& q, const at::Tensor& kc, const at::Tensor& vc,
                                    const at::Tensor& mask, const DecodeRows& rows, const std::string& label) {
  const at::Tensor want = reference(q.to(torch::kFloat), kc.to(torch::kFloat), vc.to(torch::kFloat), mask, rows);
  const double tol = q.scalar_type() == torch::kFloat ? 1e-5 : 2e-2;  // float32 arithmetic; bf16 output rounding
  for (auto kernel : {AttentionKernel::best, AttentionKernel::portable}) {
    const at::Tensor got = decode_attention(q, kc, vc, mask, rows, kernel);
    EXPECT_TRUE(torch::allclose(got.to(torch::kDouble), want, tol, tol))
        << label << (kernel == AttentionKernel::best ? " best" : " portable") << " max diff "
        << (got.to(torch::kDouble) - want).abs().max().item<double>();
  }
}

}  // namespace

TEST(DecodeAttention, MatchesTheReferenceWithSharedPrefixesAndMasks) {
  torch::manual_seed(7);
  const int64_t Bc = 5, Hkv = 2, H = 4, C = 24, L = 20;
  // Head dims of real models (64, 128) and a smaller one.
  for (auto kernel : {AttentionKernel::best, AttentionKernel::portable})
  for (int64_t D : {32, 64, 128})
  for (auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
    SCOPED_TRACE("D " + std::to_string(D) + (kernel == AttentionKernel::best ? " best" : " portable") + " " +
                 c10::toString(dtype));
    const auto qtype = dtype == torch::kHalf ? torch::kFloat : dtype;  // a float16 cache serves float32 queries
    const at::Tensor kc = torch::randn({Bc, Hkv, C, D}).to(dtype), vc = torch::randn({Bc, Hkv, C, D}).to(dtype);
    // Rows: slot 1 alone; slots 2 and 3 forked from slot 0 with 9 shared positions; slot 4 with a short mask.
    DecodeRows rows{{1, 2, 3, 4}, {1, 0, 0, 4}, {0, 9, 9, 0}};
    const int64_t B = 4;
    at::Tensor mask = torch::zeros({B, L});
    mask[3].narrow(0, 6, L - 6).fill_(-std::numeric_limits<float>::infinity());  // row 3 sees 6 positions
    mask[0].narrow(0, 15, L - 15).fill_(-std::numeric_limits<float>::infinity());
    const at::Tensor q = (torch::randn({B, H, D}) * 0.3).to(qtype);
    const at::Tensor got = decode_attention(q, kc, vc, mask, rows, kernel);
    ASSERT_EQ(got.scalar_type(), qtype);
    const at::Tensor want = reference(q.to(torch::kFloat), kc.to(torch::kFloat), vc.to(torch::kFloat), mask, rows);
    const double tol = qtype == torch::kFloat ? 1e-5 : 2e-2;
    EXPECT_TRUE(torch::allclose(got.to(torch::kDouble), want, tol, tol))
        << "max diff " << (got.to(torch::kDouble) - want).abs().max().item<double>();
    // One mask row for all rows broadcasts.
    const at::Tensor one = decode_attention(q, kc, vc, torch::zeros({1, L}), rows, kernel);
    EXPECT_TRUE(torch::allclose(one.to(torch::kDouble), reference(q.to(torch::kFloat), kc.to(torch::kFloat),
                                                                  vc.to(torch::kFloat), torch::zeros({1, L}), rows),
                                tol, tol));
  }
}

// Many forks of one prompt in one batch, as k samples of a judgment decode: the origin's own row among them,
// different shared lengths, rows whose origin is not in the batch, tails of different lengths, prompt padding
// hidden in every row; G = 2 and G = 1.
TEST(DecodeAttention, GroupsOfForksMatchTheReference) {
  torch::manual_seed(11);
  const int64_t Bc = 45, C = 40, D = 16, L = 37;
  const float inf = std::numeric_limits<float>::infinity();
  for (int64_t H : {4, 2}) {
    const int64_t Hkv = 2;
    for (auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
      const at::Tensor kc = torch::randn({Bc, Hkv, C, D}).to(dtype), vc = torch::randn({Bc, Hkv, C, D}).to(dtype);
      DecodeRows rows;
      // Slot 0 is the origin of slots 1..39 (rows 0..39, the origin's row first); rows 40..41 fork slot 44,
      // which is not in the batch; slots 42, 43 stand alone.
      for (int s = 0; s < 40; ++s) {
        rows.slot.push_back(s);
        rows.origin.push_back(0);
        rows.shared.push_back(s == 0 ? 0 : (s % 7 == 3 ? 17 : 25));
      }
      for (int s : {40, 41}) rows.slot.push_back(s), rows.origin.push_back(44), rows.shared.push_back(30);
      for (int s : {42, 43}) rows.slot.push_back(s), rows.origin.push_back(s), rows.shared.push_back(0);
      const auto B = static_cast<int64_t>(rows.slot.size());
      copy_shared_prefixes(kc, vc, rows);
      at::Tensor mask = torch::zeros({B, L});
      for (int64_t b = 0; b < B; ++b) {
        mask[b].narrow(0, 3, 2).fill_(-inf);  // the same hidden prompt padding in every row
        const int64_t seen = 26 + (b * 5) % 11;  // tails of different lengths
        mask[b].narrow(0, seen, L - seen).fill_(-inf);
      }
      const at::Tensor q = (torch::randn({B, H, D}) * 0.3).to(dtype == torch::kHalf ? torch::kFloat : dtype);
      expect_kernels_match_reference(q, kc, vc, mask, rows, "H " + std::to_string(H) + " " + c10::toString(dtype));
    }
  }
}

// Contexts of many tiles (the AVX2 kernel walks a shared prefix tile by tile for groups of at most 16 forks):
// 18 forks of one prompt, the origin's row among them, shared lengths that differ, masks that differ inside
// the shared prefix for some rows (the common part must stop there), and a group whose origin is not in the batch.
TEST(DecodeAttention, LongContextsAcrossTilesAndGroups) {
  torch::manual_seed(13);
  const int64_t Bc = 24, C = 320, D = 64, L = 300, Hkv = 2, H = 4;
  const float inf = std::numeric_limits<float>::infinity();
  for (auto dtype : {torch::kFloat, torch::kBFloat16, torch::kHalf}) {
    const at::Tensor kc = torch::randn({Bc, Hkv, C, D}).to(dtype), vc = torch::randn({Bc, Hkv, C, D}).to(dtype);
    DecodeRows rows;
    for (int s = 0; s < 18; ++s) {
      rows.slot.push_back(s);
      rows.origin.push_back(0);
      rows.shared.push_back(s == 0 ? 0 : 200 + (s * 13) % 50);
    }
    for (int s : {18, 19, 20}) rows.slot.push_back(s), rows.origin.push_back(23), rows.shared.push_back(150);
    const auto B = static_cast<int64_t>(rows.slot.size());
    copy_shared_prefixes(kc, vc, rows);
    at::Tensor mask = torch::zeros({B, L});
    for (int64_t b = 0; b < B; ++b) {
      if (b % 5 == 2) mask[b][7] = -inf;      // hidden inside the shared prefix in some rows only
      if (b == 11) mask[b][120] = -0.75f;    // a finite bias that differs inside the prefix
      const int64_t seen = 252 + (b * 7) % 48;
      mask[b].narrow(0, seen, L - seen).fill_(-inf);
    }
    const at::Tensor q = (torch::randn({B, H, D}) * 0.2).to(dtype == torch::kHalf ? torch::kFloat : dtype);
    expect_kernels_match_reference(q, kc, vc, mask, rows, c10::toString(dtype));
  }
}

// The AVX2 kernel walks the common prefix of a group of ≥ 8 queries with one query per lane, 8 or 16 at a time:
// every group size from 1 to 37 queries (one row per fork, G = 1 and G = 3), so lane chunks come full, partly
// filled and split, with a prefix of several tiles (a hidden position and finite biases in it) and a tail of
// own positions after it; head dims 32 and 128 (tiles of 32 and 16 positions).
TEST(DecodeAttention, PrefixGroupsOfEveryWidth) {
  torch::manual_seed(19);
  const int64_t C = 120, L = 110, Hkv = 1;
  for (int64_t D : {32, 128})
  for (int64_t G : {1, 3})
    for (int64_t forks = 1; forks * G <= 37; ++forks) {
      const int64_t Bc = forks + 1, H = G * Hkv;
      for (auto dtype : {torch::kFloat, torch::kHalf}) {
        const at::Tensor kc = torch::randn({Bc, Hkv, C, D}).to(dtype), vc = torch::randn({Bc, Hkv, C, D}).to(dtype);
        DecodeRows rows;
        for (int64_t s = 1; s <= forks; ++s) rows.slot.push_back(s), rows.origin.push_back(0), rows.shared.push_back(90);
        copy_shared_prefixes(kc, vc, rows);
        at::Tensor mask = torch::zeros({forks, L});
        mask.select(1, 5).fill_(-std::numeric_limits<float>::infinity());  // hidden in every row's prefix
        mask.select(1, 17).fill_(-0.75f);  // finite biases inside the prefix, the same in every row
        mask.select(1, 40).fill_(0.5f);
        for (int64_t b = 0; b < forks; ++b) {
          const int64_t seen = 95 + b % 15;
          mask[b].narrow(0, seen, L - seen).fill_(-std::numeric_limits<float>::infinity());
        }
        const at::Tensor q = torch::randn({forks, H, D}) * 0.3;
        expect_kernels_match_reference(q, kc, vc, mask, rows,
                                       "D " + std::to_string(D) + ", G " + std::to_string(G) + ", forks " + std::to_string(forks) + " " +
                                           c10::toString(dtype));
      }
    }
}

// Work items are split over threads, never a sum: the output is the same bits with any number of threads.
TEST(DecodeAttention, SameBitsWithAnyNumberOfThreads) {
  torch::manual_seed(17);
  const int64_t Bc = 20, C = 200, D = 64, L = 180, Hkv = 2, H = 4;
  const at::Tensor kc = torch::randn({Bc, Hkv, C, D}), vc = torch::randn({Bc, Hkv, C, D});
  DecodeRows rows;
  for (int s = 0; s < 20; ++s) {
    rows.slot.push_back(s);
    rows.origin.push_back(s < 10 ? 0 : 10);
    rows.shared.push_back(s == 0 || s == 10 ? 0 : 120);
  }
  copy_shared_prefixes(kc, vc, rows);
  const at::Tensor mask = torch::zeros({20, L}), q = torch::randn({20, H, D}) * 0.2;
  const at::Tensor kh = kc.to(torch::kHalf), vh = vc.to(torch::kHalf);
  for (auto kernel : {AttentionKernel::best, AttentionKernel::portable}) {
    grm::engine::set_worker_threads(1);
    const at::Tensor one = decode_attention(q, kc, vc, mask, rows, kernel);
    const at::Tensor one_half = decode_attention(q, kh, vh, mask, rows, kernel);
    for (int threads : {2, 3, 8}) {
      grm::engine::set_worker_threads(threads);
      EXPECT_TRUE(torch::equal(decode_attention(q, kc, vc, mask, rows, kernel), one)) << threads << " threads";
      EXPECT_TRUE(torch::equal(decode_attention(q, kh, vh, mask, rows, kernel), one_half)) << threads << " threads";
    }
  }
  grm::engine::set_worker_threads(0);  // the default
}

TEST(DecodeAttention, RejectsRowsOutsideTheCache) {
  const at::Tensor kc = torch::zeros({2, 1, 8, 16}), q = torch::zeros({1, 1, 16});
  EXPECT_THROW(decode_attention(q, kc, kc, torch::zeros({1, 8}), DecodeRows{{2}, {0}, {0}}), grm::Error);
  EXPECT_THROW(decode_attention(q, kc, kc, torch::zeros({1, 8}), DecodeRows{{0, 1}, {0}, {0}}), grm::Error);
  EXPECT_THROW(decode_attention(q, kc, kc, torch::zeros({1, 9}), DecodeRows{{0}, {0}, {0}}), grm::Error);
  // Queries in float16 and keys and values of different dtypes are not supported.
  EXPECT_FALSE(grm::engine::decode_attention_supported(q.to(torch::kHalf), kc.to(torch::kHalf), kc.to(torch::kHalf)));
  EXPECT_FALSE(grm::engine::decode_attention_supported(q, kc.to(torch::kHalf), kc));
  EXPECT_TRUE(grm::engine::decode_attention_supported(q, kc.to(torch::kHalf), kc.to(torch::kHalf)));
}
