// grm synth: write the synthetic generalist reward suite (docs/synth.md) as JSONL.
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/io.h"
#include "core/error.h"
#include "synth/synth.h"

namespace {

struct SynthArgs {
  std::string split = "train";
  int n = 1000;
  uint64_t seed = 0;
  std::string out;
};

std::pair<CLI::App*, grm::cli::Runner> setup(CLI::App& app) {
  auto args = std::make_shared<SynthArgs>();
  auto* sub = app.add_subcommand("synth", "Write a synthetic reward suite with known ground truth (JSONL)");
  sub->add_option("--split", args->split, "train | dev | test (test uses held-out entities and operands)")
      ->capture_default_str();
  sub->add_option("--n", args->n, "Number of records")->capture_default_str()->check(CLI::Range(0, 100000000));
  sub->add_option("--seed", args->seed, "Seed; the same (split, seed) always gives the same records")
      ->capture_default_str();
  sub->add_option("--out", args->out, "Output file, written atomically (default: stdout)");
  sub->footer(
      "Each line: {id, domain, template (compact | single-binary), key, query, responses, best (n >= 2) or label "
      "(n = 1), principles [{text, weight}], analyses, scores (original order), target (gold judgment text)}.");
  return {sub, [args] {
            const grm::synth::Split split = grm::synth::parse_split(args->split);
            const auto records = grm::synth::generate_suite(split, args->n, args->seed);
            if (!args->out.empty()) {
              grm::synth::write_jsonl_atomic(records, args->out);
            } else {
              for (const auto& r : records) grm::cli::print_json_line(grm::synth::to_json(r));
            }
            return 0;
          }};
}

GRM_COMMAND(60, setup);

}  // namespace
