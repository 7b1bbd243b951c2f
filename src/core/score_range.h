#pragma once

namespace grm {

// Inclusive integer score range of the judge. Default 1..10 (the paper); 0..1 for the single-response
// correctness mode.
struct ScoreRange {
  int lo = 1;
  int hi = 10;
  int width() const { return hi - lo + 1; }
  bool contains(int s) const { return s >= lo && s <= hi; }
};

}  // namespace grm
