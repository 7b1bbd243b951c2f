// The inference-time scaling scorer: schedule → render → generate → parse → map back → (meta) → vote.
//
// For each record, k permutations come from the schedule; sample j shows the responses in order j and is
// generated with seed derive_seed(record_seed, j), one GenerationRequest per sample (the engine prefills
// each distinct prompt once and forks it). All records passed to score() share the generator's batches.
//
// Early stop (Vote only): a record with n >= 2 responses first draws floor(k/2) + 1 samples (no winner is
// provable earlier), then rounds of `round_size`; after each round a record stops as
// soon as argmax_decided() proves the remaining samples cannot change its winner, so its `best` equals the
// full-k result while `samples_used` < k. With meta voting early stop is refused: which samples survive the
// top-k_meta cut depends on samples not yet drawn, so no partial result is provably final.
#pragma once
#include <cstdint>
#include <functional>
#include <vector>

#include "core/generator.h"
#include "core/schedule.h"
#include "core/template.h"
#include "core/vote.h"
#include "its/record.h"

namespace grm {

struct ScorerOptions {
  int k = 8;
  ScheduleKind schedule = ScheduleKind::Balanced;
  Aggregate aggregate = Aggregate::Vote;
  int k_meta = -1;  // -1: k/2
  uint64_t seed = 0;
  SamplingParams sampling{};  // temperature 0.5 (the paper's scaling runs), max_tokens, stop
  bool early_stop = false;
  int round_size = 4;
  bool keep_text = false;  // keep each sample's raw text in the Reward
};

class Scorer {
 public:
  // `meta` may be null unless options.aggregate needs it (then the constructor throws grm::Error).
  Scorer(Generator& generator, Template tmpl, ScorerOptions options, MetaScorer* meta = nullptr);

  // Scores every record; rewards[i] belongs to records[i]. `progress(done_samples, total_samples)` is called
  // after each generation round when given.
  std::vector<Reward> score(const std::vector<Record>& records,
                            const std::function<void(int64_t, int64_t)>& progress = {}) const;

  const Template& tmpl() const { return tmpl_; }
  const ScorerOptions& options() const { return options_; }

 private:
  Generator& generator_;
  Template tmpl_;
  ScorerOptions options_;
  MetaScorer* meta_;
};

}  // namespace grm
