#include "core/schedule.h"

#include <gtest/gtest.h>

#include "core/error.h"
#include "core/rng.h"

using namespace grm;

TEST(Schedule, EveryOrderIsAPermutation) {
  for (auto kind : {ScheduleKind::Random, ScheduleKind::Balanced, ScheduleKind::Identity})
    for (int n = 1; n <= 7; ++n)
      for (const auto& o : make_schedule(kind, n, 23, 5)) EXPECT_TRUE(is_permutation_of(o, n));
}

TEST(Schedule, BalancedVisitsEveryPositionEquallyWhenKIsAMultipleOfN) {
  for (int n = 1; n <= 8; ++n)
    for (int mult = 1; mult <= 4; ++mult)
      for (uint64_t seed : {0ull, 1ull, 99ull}) {
        const int k = n * mult;
        std::vector<std::vector<int>> count(n, std::vector<int>(n, 0));
        for (const auto& o : make_schedule(ScheduleKind::Balanced, n, k, seed))
          for (int pos = 0; pos < n; ++pos) ++count[o[pos]][pos];
        for (int r = 0; r < n; ++r)
          for (int pos = 0; pos < n; ++pos) EXPECT_EQ(count[r][pos], mult) << "n=" << n << " k=" << k;
      }
}

TEST(Schedule, BalancedIsNotTheSameOrderRepeated) {
  // With n = 4, k = 8 two blocks are drawn; the schedule must contain several distinct orders.
  auto s = make_schedule(ScheduleKind::Balanced, 4, 8, 3);
  std::set<Order> distinct(s.begin(), s.end());
  EXPECT_GE(distinct.size(), 4u);
}

TEST(Schedule, PrefixPropertyAndDeterminism) {
  for (auto kind : {ScheduleKind::Random, ScheduleKind::Balanced}) {
    auto big = make_schedule(kind, 5, 32, 11);
    auto small = make_schedule(kind, 5, 7, 11);
    ASSERT_EQ(small.size(), 7u);
    for (size_t j = 0; j < small.size(); ++j) EXPECT_EQ(small[j], big[j]);
    EXPECT_EQ(make_schedule(kind, 5, 32, 11), big);
    EXPECT_NE(make_schedule(kind, 5, 32, 12), big);
  }
}

TEST(Schedule, RandomCoversAllPermutationsRoughlyUniformly) {
  std::map<Order, int> freq;
  const int k = 6000;
  for (const auto& o : make_schedule(ScheduleKind::Random, 3, k, 7)) ++freq[o];
  ASSERT_EQ(freq.size(), 6u);
  for (const auto& [o, c] : freq) EXPECT_NEAR(c, k / 6.0, 150);  // ~5 sigma
}

TEST(Schedule, IdentityIsIdentity) {
  for (const auto& o : make_schedule(ScheduleKind::Identity, 4, 3, 0)) EXPECT_EQ(o, (Order{0, 1, 2, 3}));
}

TEST(Schedule, MapBackInvertsShowing) {
  Rng rng(1);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + static_cast<int>(rng.below(9));
    std::vector<int> original(n);
    for (auto& v : original) v = 1 + static_cast<int>(rng.below(10));
    for (const auto& order : make_schedule(ScheduleKind::Random, n, 4, trial)) {
      std::vector<int> shown(n);
      for (int pos = 0; pos < n; ++pos) shown[pos] = original[order[pos]];  // what the judge sees
      EXPECT_EQ(map_back(order, shown), original);
    }
  }
}

TEST(Schedule, PaperWorkedExample) {
  // (9,5) shown in order [1,0] → response 0 got 5, response 1 got 9.
  EXPECT_EQ(map_back({1, 0}, {9, 5}), (std::vector<int>{5, 9}));
}

TEST(Schedule, Errors) {
  EXPECT_THROW(map_back({0, 0}, {1, 2}), Error);
  EXPECT_THROW(map_back({0, 1}, {1}), Error);
  EXPECT_THROW(make_schedule(ScheduleKind::Random, 0, 3, 0), Error);
  EXPECT_THROW(parse_schedule_kind("latin"), Error);
  EXPECT_EQ(parse_schedule_kind("balanced"), ScheduleKind::Balanced);
  EXPECT_FALSE(is_permutation_of({0, 2}, 2));
  EXPECT_FALSE(is_permutation_of({-1, 0}, 2));
}
