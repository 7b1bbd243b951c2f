#include "core/correct.h"

#include <cmath>

namespace grm {

bool is_correct_best(const std::vector<double>& scores, int best) {
  if (best < 0 || best >= static_cast<int>(scores.size())) return false;
  for (size_t i = 0; i < scores.size(); ++i)
    if (static_cast<int>(i) != best && !(scores[static_cast<size_t>(best)] > scores[i])) return false;
  return true;
}

bool is_correct_label(double score, double label) { return score == label; }

bool is_correct(const Judgment& j, int best) {
  if (!j.valid) return false;
  return is_correct_best(std::vector<double>(j.scores.begin(), j.scores.end()), best);
}

bool is_correct_single(const Judgment& j, int label) {
  if (!j.valid || j.scores.size() != 1) return false;
  return is_correct_label(j.scores[0], label);
}

}  // namespace grm
