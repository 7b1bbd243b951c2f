// grm vote: aggregate sampled judgments given as JSONL on stdin.
#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "cli/io.h"
#include "core/error.h"
#include "core/jsonl.h"
#include "core/schedule.h"
#include "core/vote.h"

namespace {

struct VoteArgs {
  std::string aggregate = "vote";
  int k_meta = -1;
  uint64_t seed = 0;
  int score_min = 1;
  int score_max = 10;
};

// One input line → a Sample with scores in ORIGINAL order; `n` is fixed by the first line that shows it.
grm::Sample read_sample(const nlohmann::json& v, int& n) {
  if (!v.is_object()) throw grm::Error("expected a JSON object");
  grm::Sample s;
  s.judgment.valid = true;
  if (v.contains("valid")) {
    if (!v["valid"].is_boolean()) throw grm::Error("'valid' must be a boolean");
    s.judgment.valid = v["valid"].get<bool>();
  }
  std::vector<int> shown;
  if (v.contains("scores") && !v["scores"].is_null()) {
    if (!v["scores"].is_array()) throw grm::Error("'scores' must be an array of integers");
    for (const auto& x : v["scores"]) {
      if (!x.is_number_integer()) throw grm::Error("'scores' must be an array of integers");
      shown.push_back(x.get<int>());
    }
  } else if (s.judgment.valid) {
    throw grm::Error("a valid sample needs 'scores'");
  }
  if (v.contains("order") && !v["order"].is_null()) {
    if (!v["order"].is_array()) throw grm::Error("'order' must be an array of integers");
    for (const auto& x : v["order"]) {
      if (!x.is_number_integer()) throw grm::Error("'order' must be an array of integers");
      s.order.push_back(x.get<int>());
    }
  }
  if (v.contains("meta") && !v["meta"].is_null()) {
    if (!v["meta"].is_number()) throw grm::Error("'meta' must be a number");
    s.meta = v["meta"].get<double>();
  }
  const int width = !s.order.empty() ? static_cast<int>(s.order.size()) : static_cast<int>(shown.size());
  if (width > 0) {
    if (n < 0) n = width;
    if (width != n) throw grm::Error("sample has " + std::to_string(width) + " responses, earlier samples had " + std::to_string(n));
  }
  if (s.order.empty() && n > 0) s.order = grm::make_schedule(grm::ScheduleKind::Identity, n, 1, 0)[0];
  if (!grm::is_permutation_of(s.order, static_cast<int>(s.order.size())))
    throw grm::Error("'order' is not a permutation of 0..n-1");
  if (s.judgment.valid) {
    if (shown.size() != s.order.size())
      throw grm::Error("'scores' has " + std::to_string(shown.size()) + " entries, 'order' has " + std::to_string(s.order.size()));
    s.judgment.scores = grm::map_back(s.order, shown);
  }
  return s;
}

std::pair<CLI::App*, grm::cli::Runner> setup(CLI::App& app) {
  auto args = std::make_shared<VoteArgs>();
  auto* sub = app.add_subcommand("vote", "Aggregate sampled judgments (JSONL on stdin) by voting or meta-guided voting");
  sub->add_option("--aggregate", args->aggregate, "vote | meta | meta-weighted")->capture_default_str();
  sub->add_option("--k-meta", args->k_meta, "Samples kept by meta voting (default k/2)");
  sub->add_option("--seed", args->seed, "Seed of the argmax tie-break")->capture_default_str();
  sub->add_option("--score-min", args->score_min, "Lowest valid score")->capture_default_str();
  sub->add_option("--score-max", args->score_max, "Highest valid score")->capture_default_str();
  sub->footer(
      "Each line: {\"order\": [original index shown at each position] (identity when absent), \"scores\": [in SHOWN "
      "order], \"valid\": bool (default true), \"meta\": number (for meta)}.\nPrints {rewards (original order), best, "
      "valid_samples, abstentions, kept, histogram, ...}.");
  return {sub, [args] {
            grm::VoteOptions opt;
            opt.aggregate = grm::parse_aggregate(args->aggregate);
            opt.k_meta = args->k_meta;
            opt.seed = args->seed;
            opt.range = {args->score_min, args->score_max};
            if (opt.range.lo >= opt.range.hi) throw grm::Error("--score-min must be below --score-max");
            std::vector<grm::Sample> samples;
            std::vector<size_t> lines;
            int n = -1;
            grm::for_each_jsonl(std::cin, "stdin", [&](size_t line, const nlohmann::json& v) {
              samples.push_back(read_sample(v, n));
              lines.push_back(line);
              for (int sc : samples.back().judgment.scores)
                if (!opt.range.contains(sc)) throw grm::Error("score " + std::to_string(sc) + " out of range");
              if (opt.aggregate != grm::Aggregate::Vote && samples.back().judgment.valid && !samples.back().meta)
                throw grm::Error("--aggregate " + args->aggregate + " needs a 'meta' score on every valid sample");
            });
            if (samples.empty()) throw grm::Error("stdin: no samples");
            if (n < 0) throw grm::Error("stdin: no sample says how many responses there are");
            for (size_t i = 0; i < samples.size(); ++i)  // abstaining lines without an order
              if (samples[i].order.empty()) samples[i].order = grm::make_schedule(grm::ScheduleKind::Identity, n, 1, 0)[0];
            grm::Reward r = grm::aggregate(samples, n, opt);
            nlohmann::json out = r;
            out.erase("samples");
            grm::cli::print_json_line(out);
            return 0;
          }};
}

GRM_COMMAND(20, setup);

}  // namespace
