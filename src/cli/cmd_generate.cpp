// grm generate: sample completions of one prompt with the local engine.
#include <memory>

#include "cli/commands.h"
#include "cli/io.h"
#include "cli/model_args.h"
#include "core/error.h"

namespace {

struct GenerateArgs {
  grm::cli::ModelArgs model;
  std::string prompt;
  bool prompt_stdin = false;
  int n = 1;
  grm::SamplingParams params;
};

std::pair<CLI::App*, grm::cli::Runner> setup(CLI::App& app) {
  auto a = std::make_shared<GenerateArgs>();
  a->params.temperature = 1.0;
  a->params.max_tokens = 128;
  auto* sub = app.add_subcommand("generate", "Sample completions of a prompt with the local engine");
  grm::cli::add_model_options(sub, a->model);
  auto* p = sub->add_option("--prompt", a->prompt, "Prompt text");
  sub->add_flag("--prompt-stdin", a->prompt_stdin, "Read the prompt from stdin")->excludes(p);
  sub->add_option("-n", a->n, "Completions to sample (prefill is shared)")->capture_default_str()->check(CLI::Range(1, 4096));
  sub->add_option("--temperature", a->params.temperature, "Sampling temperature (0: greedy)")->capture_default_str()->check(CLI::Range(0.0, 100.0));
  sub->add_option("--top-p", a->params.top_p, "Nucleus sampling mass")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  sub->add_option("--top-k", a->params.top_k, "Keep the k most likely tokens (0: off)")->capture_default_str()->check(CLI::NonNegativeNumber);
  sub->add_option("--max-tokens", a->params.max_tokens, "New tokens per completion")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  sub->add_option("--stop", a->params.stop, "Stop string (repeatable); not included in the text");
  sub->add_option("--seed", a->params.seed, "Seed; completion j uses derive_seed(seed, j)")->capture_default_str();
  sub->footer("Prints one JSON line per completion: {index, text, prompt_tokens, completion_tokens, finish_reason}.");
  return {sub, [a] {
            if (a->prompt_stdin) a->prompt = grm::cli::read_all_stdin();
            if (a->prompt.empty()) throw grm::Error("give a prompt with --prompt TEXT or --prompt-stdin");
            auto gen = grm::cli::open_generator(a->model);
            grm::GenerationRequest req{a->prompt, a->n, a->params};
            const auto out = gen->generate({req});
            for (size_t j = 0; j < out[0].size(); ++j) {
              const auto& c = out[0][j];
              grm::cli::print_json_line({{"index", j},
                                         {"text", c.text},
                                         {"prompt_tokens", c.prompt_tokens},
                                         {"completion_tokens", c.completion_tokens},
                                         {"finish_reason", c.finish_reason}});
            }
            return 0;
          }};
}

GRM_COMMAND(40, setup);

}  // namespace
