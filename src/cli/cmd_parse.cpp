// grm parse: judge text on stdin → one JSON object with the parsed judgment.
#include <memory>

#include "cli/commands.h"
#include "cli/io.h"
#include "core/error.h"
#include "core/parse.h"

namespace {

struct ParseArgs {
  int responses = 2;
  int score_min = 1;
  int score_max = 10;
};

std::pair<CLI::App*, grm::cli::Runner> setup(CLI::App& app) {
  auto args = std::make_shared<ParseArgs>();
  auto* sub = app.add_subcommand("parse", "Parse a judge's output (stdin) into principles, critique and scores");
  sub->add_option("-n,--responses", args->responses, "Number of responses the judgment scores")
      ->required()
      ->check(CLI::Range(1, 64));
  sub->add_option("--score-min", args->score_min, "Lowest valid score")->capture_default_str();
  sub->add_option("--score-max", args->score_max, "Highest valid score")->capture_default_str();
  sub->footer(
      "Prints {valid, scores (shown order), principles [{text, weight}], critique, error?}. Exits 0 whether or not "
      "the judgment is valid.");
  return {sub, [args] {
            if (args->score_min >= args->score_max) throw grm::Error("--score-min must be below --score-max");
            const std::string text = grm::cli::read_all_stdin();
            const grm::Judgment j = grm::parse_judgment(text, args->responses, {args->score_min, args->score_max});
            grm::cli::print_json_line(j);
            return 0;
          }};
}

GRM_COMMAND(10, setup);

}  // namespace
