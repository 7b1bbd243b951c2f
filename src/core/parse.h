// Reading a judge's output: principles, critique, and the scores of the LAST \boxed{...} after the
// Scores line. Never throws; linear time in the input length on any bytes.
#pragma once
#include <string_view>

#include "core/score_range.h"
#include "core/types.h"

namespace grm {

// Parses `text` written for `n_responses` responses. Scores are returned in SHOWN order (the order of the
// prompt); use map_back() to bring them to original order. On failure `valid` is false and `error` says why:
// "empty output", "no boxed scores", "wrong count: expected N, got M", "non-integer score 'x'",
// "score S out of range [lo, hi]".
Judgment parse_judgment(std::string_view text, int n_responses, ScoreRange range = {});

}  // namespace grm
