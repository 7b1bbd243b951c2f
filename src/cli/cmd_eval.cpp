// grm eval: benchmarks → one sampling pass at k_max (resumable) → Voting@k / MetaRM@k / greedy with CIs.
#include <unistd.h>

#include <filesystem>
#include <memory>

#include <fmt/core.h>

#include "cli/commands.h"
#include "cli/model_args.h"
#include "core/error.h"
#include "eval/item.h"
#include "eval/runner.h"

namespace {

namespace fs = std::filesystem;

struct EvalArgs {
  grm::cli::ModelArgs model;
  std::vector<std::string> benches, data;
  std::string meta_model, samples, out, ties = "random", template_spec;
  grm::eval::EvalOptions opt;
  size_t limit = 0;
};

grm::Template pick_template(const EvalArgs& a) {
  if (!a.template_spec.empty()) return grm::Template::resolve(a.template_spec);
  const std::string dir = a.model.model.empty() ? grm::cli::default_model_dir() : a.model.model;
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "template.txt", ec)) return grm::Template::load((fs::path(dir) / "template.txt").string());
  return grm::Template::builtin("default");
}

int run(EvalArgs& a) {
  if (!a.meta_model.empty())
    throw grm::Error("--meta-model: loading a meta RM is not implemented yet (it arrives with SPCT training); "
                     "MetaRM@k is reported from stored samples that carry meta scores (grm eval --samples FILE)");
  grm::eval::EvalOptions opt = a.opt;
  opt.ties = grm::parse_tie_policy(a.ties);
  opt.limit = a.limit;
  opt.progress = isatty(STDERR_FILENO);
  if (!a.samples.empty()) {
    if (!a.data.empty()) throw grm::Error("--samples re-aggregates stored samples: do not pass --data with it");
    opt.samples_file = a.samples;
    opt.bench_filter = a.benches;
    opt.out_dir = a.out.empty() ? fs::absolute(a.samples).parent_path().string() : a.out;
  } else {
    if (a.data.empty()) throw grm::Error("nothing to evaluate: give --bench NAME --data FILE (or --samples FILE)");
    if (a.benches.size() != a.data.size() && a.benches.size() != 1)
      throw grm::Error(fmt::format("{} --bench for {} --data: give one --bench per --data (in the same order), or a "
                                   "single --bench for all of them",
                                   a.benches.size(), a.data.size()));
    for (size_t i = 0; i < a.data.size(); ++i) {
      const std::string& b = a.benches.size() == 1 ? a.benches[0] : a.benches[i];
      grm::eval::check_bench_name(b);
      opt.inputs.emplace_back(b, a.data[i]);
    }
    opt.out_dir = a.out.empty() ? "grm-eval" : a.out;
    opt.model_name = a.model.model.empty() ? grm::cli::default_model_dir() : a.model.model;
  }
  grm::eval::ModelHooks hooks;
  hooks.open_generator = [&a]() -> std::unique_ptr<grm::Generator> { return grm::cli::open_generator(a.model); };
  hooks.default_template = [&a] { return pick_template(a); };
  const auto sum = grm::eval::run_eval(opt, hooks);
  if (sum.sampled) fmt::print(stderr, "grm: sampled {} items\n", sum.sampled);
  for (const auto& w : sum.written) fmt::print(stderr, "grm: wrote {}\n", w);
  return 0;
}

std::pair<CLI::App*, grm::cli::Runner> setup(CLI::App& app) {
  auto a = std::make_shared<EvalArgs>();
  auto* sub = app.add_subcommand("eval", "Evaluate on reward-model benchmarks: one sampling pass at k_max, then "
                                         "Voting@k / MetaRM@k for every k with bootstrap CIs and a scaling plot");
  grm::cli::add_model_options(sub, a->model);
  sub->add_option("--bench", a->benches, "Benchmark of the matching --data: rewardbench | ppe-pref | ppe-correct | rmb | "
                                         "realmistake | synth (repeat; with --samples: only these)");
  sub->add_option("--data", a->data, "Benchmark file, JSON array or JSONL (repeat; PPE correctness: one file per "
                                     "source set, named after it, unless rows carry 'source')");
  sub->add_option("--meta-model", a->meta_model, "Meta RM directory (MetaRM@k)");
  sub->add_option("--k-max", a->opt.k_max, "Judgments sampled per item (k = 1, 2, 4, ... up to it)")
      ->capture_default_str()->check(CLI::Range(1, 1024));
  sub->add_option("--seed", a->opt.seed, "Seed of sampling, subsets and bootstrap")->capture_default_str();
  sub->add_option("--temperature", a->opt.temperature, "Sampling temperature (the paper: 0.5)")
      ->capture_default_str()->check(CLI::Range(0.0, 10.0));
  sub->add_option("--top-p", a->opt.top_p, "Nucleus sampling mass")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  sub->add_option("--max-tokens", a->opt.max_tokens, "Tokens per judgment")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  sub->add_option("--schedule", a->opt.schedule, "Response order per sample: random (the paper) | balanced | identity")
      ->capture_default_str();
  sub->add_option("--template", a->template_spec,
                  "Judge template: default | compact | single-binary | FILE (default: the model's template.txt, else "
                  "default; synth rows name their own)");
  sub->add_option("--out", a->out, "Output directory (default: grm-eval; with --samples: the samples file's directory)");
  sub->add_option("--ties", a->ties, "Tie at the top: random (the paper; credited 1/m in expectation) | half "
                                     "(reward-bench) | strict (Eq. 10)")->capture_default_str();
  sub->add_flag("--greedy", a->opt.greedy, "Also run one greedy (T=0) judgment per item (a flat reference line)");
  sub->add_option("--limit", a->limit, "At most N items per data file");
  sub->add_option("--samples", a->samples, "Re-aggregate a stored samples.jsonl without a model");
  sub->add_option("--subsets", a->opt.subsets, "Size-k subsets averaged per item and k (all when fewer exist)")
      ->capture_default_str()->check(CLI::Range(1, 1 << 20));
  sub->add_option("--bootstrap", a->opt.bootstrap, "Bootstrap rounds for the 95% CIs (0: none)")
      ->capture_default_str()->check(CLI::Range(0, 1 << 20));
  sub->add_option("--chunk", a->opt.chunk, "Items per generation batch")->capture_default_str()->check(CLI::Range(1, 100000));
  sub->add_flag("!--no-plot", a->opt.plot, "Skip scaling.png / scaling.svg");
  sub->footer(
      "Writes OUT/samples.jsonl (appended per item; rerunning the same command resumes), results.json, results.md, "
      "scaling.png and scaling.svg. Numbers are percentages; Overall = mean of RewardBench, PPE Preference, PPE "
      "Correctness and RMB present. See docs/eval.md.");
  return {sub, [a] { return run(*a); }};
}

GRM_COMMAND(70, setup);

}  // namespace
