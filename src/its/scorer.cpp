#include "its/scorer.h"

#include <algorithm>

#include "core/error.h"
#include "core/parse.h"
#include "core/rng.h"

namespace grm {

Scorer::Scorer(Generator& generator, Template tmpl, ScorerOptions options, MetaScorer* meta)
    : generator_(generator), tmpl_(std::move(tmpl)), options_(std::move(options)), meta_(meta) {
  if (options_.k < 1) throw Error("k must be at least 1");
  if (options_.round_size < 1) throw Error("round size must be at least 1");
  if (options_.aggregate != Aggregate::Vote) {
    if (!meta_) throw Error("--aggregate " + to_string(options_.aggregate) + " needs a meta model (--meta-model DIR)");
    if (options_.early_stop)
      throw Error("--early-stop works with --aggregate vote only (meta voting's top-k_meta cut depends on samples not "
                  "yet drawn, so no partial result is provably final)");
  }
}

namespace {

struct RecordState {
  uint64_t seed = 0;
  std::vector<Order> orders;
  std::vector<Sample> samples;
  std::vector<std::string> prompts;  // rendered prompt of each sample (for the meta RM)
  std::vector<double> totals;
  int next = 0;  // samples drawn so far
  bool done = false;
  std::string error;  // the generator could not run one of its prompts
};

}  // namespace

std::vector<Reward> Scorer::score(const std::vector<Record>& records,
                                  const std::function<void(int64_t, int64_t)>& progress) const {
  const ScoreRange range = tmpl_.range();
  const int k = options_.k;
  std::vector<RecordState> st(records.size());
  for (size_t r = 0; r < records.size(); ++r) {
    const Record& rec = records[r];
    const int n = static_cast<int>(rec.responses.size());
    if (n < 1) throw Error("record " + std::to_string(r) + " has no responses");
    st[r].seed = record_seed(rec, options_.seed);
    st[r].orders = make_schedule(options_.schedule, n, k, st[r].seed);
    st[r].totals.assign(static_cast<size_t>(n), 0.0);
  }
  const int round = options_.early_stop ? options_.round_size : k;
  // No winner among n >= 2 responses is provable before more than half of the k samples are in: each sample
  // can move the gap between two responses by at most the score range, in either direction. So the first
  // round draws floor(k/2) + 1 samples at once (one batch instead of several small ones), then `round`.
  const int first_round = options_.early_stop ? std::max(round, k / 2 + 1) : k;
  const int64_t total_samples = static_cast<int64_t>(records.size()) * k;
  int64_t drawn = 0;
  for (;;) {
    // One generation call per round, across all undecided records.
    std::vector<GenerationRequest> requests;
    std::vector<std::pair<size_t, int>> owner;  // (record, sample index)
    for (size_t r = 0; r < records.size(); ++r) {
      RecordState& s = st[r];
      if (s.done) continue;
      const int upto = std::min(k, s.next + (s.next == 0 && records[r].responses.size() > 1 ? first_round : round));
      for (int j = s.next; j < upto; ++j) {
        std::vector<std::string> shown;
        for (int idx : s.orders[static_cast<size_t>(j)]) shown.push_back(records[r].responses[static_cast<size_t>(idx)]);
        GenerationRequest req;
        req.prompt = tmpl_.render(records[r].conversation, shown);
        req.n = 1;
        req.first_index = j;
        req.params = options_.sampling;
        req.params.seed = s.seed;
        requests.push_back(std::move(req));
        owner.emplace_back(r, j);
      }
    }
    if (requests.empty()) break;
    const auto completions = generator_.generate(requests);
    if (completions.size() != requests.size()) throw Error("generator returned a wrong number of results");
    for (size_t q = 0; q < requests.size(); ++q) {
      const auto [r, j] = owner[q];
      RecordState& s = st[r];
      const int n = static_cast<int>(records[r].responses.size());
      if (completions[q].size() != 1) throw Error("generator returned a wrong number of completions");
      Sample sample;
      sample.order = s.orders[static_cast<size_t>(j)];
      sample.text = completions[q][0].text;
      if (!completions[q][0].error.empty()) {
        if (s.error.empty()) s.error = completions[q][0].error;
        sample.judgment.valid = false;
        sample.judgment.error = completions[q][0].error;
      } else {
        sample.judgment = parse_judgment(sample.text, n, range);
      }
      if (sample.judgment.valid) {
        sample.judgment.scores = map_back(sample.order, sample.judgment.scores);
        for (int i = 0; i < n; ++i) s.totals[static_cast<size_t>(i)] += sample.judgment.scores[static_cast<size_t>(i)];
      }
      s.samples.push_back(std::move(sample));
      s.prompts.push_back(requests[q].prompt);
      s.next = j + 1;
    }
    drawn += static_cast<int64_t>(requests.size());
    for (size_t r = 0; r < st.size(); ++r) {
      RecordState& s = st[r];
      if (s.done) continue;
      if (!s.error.empty()) {  // the rest of its samples would fail the same way: abstentions with the reason
        for (int j = s.next; j < k; ++j) {
          Sample sample;
          sample.order = s.orders[static_cast<size_t>(j)];
          sample.judgment.valid = false;
          sample.judgment.error = s.error;
          s.samples.push_back(std::move(sample));
          s.prompts.emplace_back();
        }
        drawn += k - s.next;
        s.next = k;
        s.done = true;
        continue;
      }
      if (s.next >= k || (options_.early_stop && argmax_decided(s.totals, k - s.next, range))) {
        s.done = true;
        drawn += k - s.next;  // samples skipped count as done for progress
      }
    }
    if (progress) progress(std::min(drawn, total_samples), total_samples);
  }
  // Meta scores for valid samples, all records in one call.
  if (options_.aggregate != Aggregate::Vote) {
    std::vector<MetaInput> inputs;
    std::vector<Sample*> targets;
    for (auto& s : st)
      for (size_t j = 0; j < s.samples.size(); ++j)
        if (s.samples[j].judgment.valid) {
          inputs.push_back({s.prompts[j], s.samples[j].text});
          targets.push_back(&s.samples[j]);
        }
    const auto scores = meta_->score(inputs);
    if (scores.size() != inputs.size()) throw Error("meta scorer returned a wrong number of scores");
    for (size_t i = 0; i < scores.size(); ++i) targets[i]->meta = scores[i];
  }
  std::vector<Reward> out;
  out.reserve(records.size());
  for (size_t r = 0; r < records.size(); ++r) {
    VoteOptions vo;
    vo.aggregate = options_.aggregate;
    vo.k_meta = options_.k_meta > 0 ? options_.k_meta : std::max(1, k / 2);
    vo.seed = st[r].seed;
    vo.range = range;
    if (!options_.keep_text)
      for (auto& s : st[r].samples) s.text.clear();
    out.push_back(aggregate(st[r].samples, static_cast<int>(records[r].responses.size()), vo));
    out.back().error = st[r].error;
  }
  return out;
}

}  // namespace grm
