#include "core/vote.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace grm {

Aggregate parse_aggregate(const std::string& name) {
  if (name == "vote") return Aggregate::Vote;
  if (name == "meta") return Aggregate::Meta;
  if (name == "meta-weighted") return Aggregate::MetaWeighted;
  throw Error("unknown aggregate '" + name + "' (expected vote, meta or meta-weighted)");
}

std::string to_string(Aggregate a) {
  switch (a) {
    case Aggregate::Vote: return "vote";
    case Aggregate::Meta: return "meta";
    case Aggregate::MetaWeighted: return "meta-weighted";
  }
  return "?";
}

int argmax_tiebreak(const std::vector<double>& v, uint64_t seed) {
  if (v.empty()) return -1;
  const double top = *std::max_element(v.begin(), v.end());
  std::vector<int> tied;
  for (size_t i = 0; i < v.size(); ++i)
    if (v[i] == top) tied.push_back(static_cast<int>(i));
  if (tied.size() == 1) return tied[0];
  Rng rng(derive_seed(seed, 0x5449452D42524B));  // "TIE-BRK"
  return tied[rng.below(tied.size())];
}

namespace {

// Indices of the samples that are summed: all valid ones (Vote) or the k_meta valid ones with the highest
// meta score (Meta, MetaWeighted); ties in meta score keep the earlier sample.
std::vector<size_t> kept_samples(const std::vector<Sample>& samples, const VoteOptions& opt) {
  std::vector<size_t> valid;
  for (size_t i = 0; i < samples.size(); ++i)
    if (samples[i].judgment.valid) valid.push_back(i);
  if (opt.aggregate == Aggregate::Vote) return valid;
  for (size_t i : valid)
    if (!samples[i].meta) throw Error("meta aggregation: sample " + std::to_string(i) + " has no meta score");
  const int k = static_cast<int>(samples.size());
  const size_t k_meta = static_cast<size_t>(opt.k_meta > 0 ? opt.k_meta : std::max(1, k / 2));
  std::stable_sort(valid.begin(), valid.end(),
                   [&](size_t a, size_t b) { return *samples[a].meta > *samples[b].meta; });
  if (valid.size() > k_meta) valid.resize(k_meta);
  std::sort(valid.begin(), valid.end());
  return valid;
}

}  // namespace

Reward aggregate(const std::vector<Sample>& samples, int n, const VoteOptions& opt) {
  if (n < 1) throw Error("aggregate: need at least one response");
  const auto un = static_cast<size_t>(n);
  Reward r;
  r.score_lo = opt.range.lo;
  r.samples_used = static_cast<int>(samples.size());
  r.rewards.assign(un, 0.0);
  r.mean_scores.assign(un, 0.0);
  r.histogram.assign(un, std::vector<int>(static_cast<size_t>(opt.range.width()), 0));
  for (size_t i = 0; i < samples.size(); ++i) {
    const Judgment& j = samples[i].judgment;
    if (!j.valid) {
      ++r.abstentions;
      continue;
    }
    ++r.valid_samples;
    if (j.scores.size() != un)
      throw Error("aggregate: sample " + std::to_string(i) + " has " + std::to_string(j.scores.size()) +
                  " scores for " + std::to_string(n) + " responses");
    for (int s : j.scores)
      if (!opt.range.contains(s))
        throw Error("aggregate: sample " + std::to_string(i) + " has score " + std::to_string(s) + " out of range [" +
                    std::to_string(opt.range.lo) + ", " + std::to_string(opt.range.hi) + "]");
  }
  const std::vector<size_t> kept = kept_samples(samples, opt);
  r.kept = static_cast<int>(kept.size());
  for (size_t idx : kept) {
    const Sample& s = samples[idx];
    const double w = opt.aggregate == Aggregate::MetaWeighted ? *s.meta : 1.0;
    for (size_t i = 0; i < un; ++i) {
      r.rewards[i] += w * s.judgment.scores[i];
      r.mean_scores[i] += s.judgment.scores[i];
      ++r.histogram[i][static_cast<size_t>(s.judgment.scores[i] - opt.range.lo)];
    }
  }
  if (!kept.empty()) {
    for (size_t i = 0; i < un; ++i) r.mean_scores[i] /= static_cast<double>(kept.size());
    if (opt.aggregate == Aggregate::MetaWeighted)
      for (auto& v : r.rewards) v /= static_cast<double>(kept.size());
    r.best = argmax_tiebreak(r.rewards, opt.seed);
  }
  r.samples = samples;
  return r;
}

bool argmax_decided(const std::vector<double>& totals, int remaining, ScoreRange range) {
  if (totals.size() <= 1) return true;
  if (remaining <= 0) return true;
  const auto leader = static_cast<size_t>(std::max_element(totals.begin(), totals.end()) - totals.begin());
  // Each remaining sample can add at most (hi - lo) to a rival's lead gap (rival gets hi, leader gets lo).
  const double max_swing = static_cast<double>(remaining) * (range.hi - range.lo);
  for (size_t i = 0; i < totals.size(); ++i) {
    if (i == leader) continue;
    if (!(totals[leader] - totals[i] > max_swing)) return false;
  }
  return true;
}

}  // namespace grm
