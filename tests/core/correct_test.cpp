#include "core/correct.h"

#include <gtest/gtest.h>

using namespace grm;

TEST(Correct, BestMustBeStrictlyHighest) {
  EXPECT_TRUE(is_correct_best({3, 9}, 1));
  EXPECT_FALSE(is_correct_best({3, 9}, 0));
  EXPECT_FALSE(is_correct_best({9, 9}, 0));  // a tie is not correct
  EXPECT_FALSE(is_correct_best({9, 9, 1}, 1));
  EXPECT_TRUE(is_correct_best({1, 2, 10, 4}, 2));
  EXPECT_FALSE(is_correct_best({1, 2}, 5));
}

TEST(Correct, SingleResponseLabel) {
  EXPECT_TRUE(is_correct_label(1, 1));
  EXPECT_FALSE(is_correct_label(0, 1));
  Judgment j;
  j.valid = true;
  j.scores = {0};
  EXPECT_TRUE(is_correct_single(j, 0));
  EXPECT_FALSE(is_correct_single(j, 1));
}

TEST(Correct, InvalidJudgmentIsNeverCorrect) {
  Judgment j;
  j.valid = false;
  j.scores = {1, 9};
  EXPECT_FALSE(is_correct(j, 1));
  j.valid = true;
  EXPECT_TRUE(is_correct(j, 1));
  j.valid = false;
  j.scores = {1};
  EXPECT_FALSE(is_correct_single(j, 1));
}
