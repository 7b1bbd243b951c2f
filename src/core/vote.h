// Aggregation of sampled judgments: Vote (paper Eq. 6), MetaVote, histograms, tie-break, exact early stop.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/score_range.h"
#include "core/types.h"

namespace grm {

enum class Aggregate { Vote, Meta, MetaWeighted };
Aggregate parse_aggregate(const std::string& name);  // "vote" | "meta" | "meta-weighted"; throws grm::Error
std::string to_string(Aggregate a);

struct VoteOptions {
  Aggregate aggregate = Aggregate::Vote;
  int k_meta = -1;  // -1: k/2 (at least 1)
  uint64_t seed = 0;  // for the argmax tie-break
  ScoreRange range{};
};

// Aggregates samples whose judgments hold scores in ORIGINAL order, all for `n` responses.
// Vote: totals = Σ scores over valid samples; invalid samples are abstentions (never scored as 0).
// Meta: keep the k_meta valid samples with the highest meta score (ties: earlier sample first), then Vote.
// MetaWeighted (the seed review's variant): Σ score·meta / |kept| over the kept samples.
// Throws grm::Error when meta aggregation is asked for and a valid sample has no meta score.
Reward aggregate(const std::vector<Sample>& samples, int n, const VoteOptions& opt);

// Argmax with seeded random tie-break among all maxima; -1 for an empty vector.
int argmax_tiebreak(const std::vector<double>& v, uint64_t seed);

// Exact early-stop test for Vote: with current `totals`, `remaining` samples still to come, each adding a
// score in `range` to every response (or abstaining), can the set of argmax responses still change?
// Returns true when the current unique leader is certain to stay the unique leader. With a tie
// at the top it returns false (the tie could be broken either way).
bool argmax_decided(const std::vector<double>& totals, int remaining, ScoreRange range);

}  // namespace grm
