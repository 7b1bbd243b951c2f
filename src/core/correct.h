// The paper's correctness rule (Eq. 10), used by RFT, GRPO, meta RM labels and evaluation.
#pragma once
#include <vector>

#include "core/types.h"

namespace grm {

// n >= 2: correct iff scores[best] > scores[i] for every i != best (a tie is not correct).
bool is_correct_best(const std::vector<double>& scores, int best);
// n == 1: correct iff the single score equals the label.
bool is_correct_label(double score, double label);
// On a judgment: an invalid judgment is never correct.
bool is_correct(const Judgment& j, int best);
bool is_correct_single(const Judgment& j, int label);

}  // namespace grm
