// grm eval's job: load benchmarks, sample k_max judgments per item once (resumable, appended to
// OUT/samples.jsonl), then compute every Voting@k / MetaRM@k / greedy number from the stored samples and write
// results.json, results.md and the scaling plots. Torch-free: the model comes in through ModelHooks.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/generator.h"
#include "core/metrics.h"
#include "core/template.h"
#include "eval/results.h"

namespace grm::eval {

struct EvalOptions {
  std::vector<std::pair<std::string, std::string>> inputs;  // (bench, data file)
  std::string samples_file;  // re-aggregate this samples file; no model, no --data
  std::vector<std::string> bench_filter;  // with samples_file: only these benchmarks (empty: all)
  std::string out_dir;
  int k_max = 32;
  uint64_t seed = 0;
  double temperature = 0.5;
  double top_p = 1.0;
  int max_tokens = 512;
  std::string schedule = "random";
  TiePolicy ties = TiePolicy::Random;
  bool greedy = false;  // also run the T=0, k=1 pass (identity order)
  size_t limit = 0;     // items per data file (0: all)
  int subsets = 64;
  int bootstrap = 1000;
  int chunk = 16;  // items per generation batch (a batch is k_max sequences per item)
  bool progress = false;
  bool plot = true;
  std::string gnuplot = "gnuplot";
  std::string model_name;  // recorded in results.json
};

struct ModelHooks {
  std::function<std::unique_ptr<Generator>()> open_generator;  // called only if something is left to sample
  std::function<Template()> default_template;  // the template of items that do not name one
};

struct EvalSummary {
  EvalResults results;
  size_t sampled = 0;  // items (and greedy items) sampled by this run
  size_t resumed = 0;  // items found already in samples.jsonl
  std::vector<std::string> written;
  std::string plot_error;
};

// Runs the whole job. Row errors and warnings go to stderr; user errors throw grm::Error.
EvalSummary run_eval(const EvalOptions& opt, const ModelHooks& hooks);

}  // namespace grm::eval
