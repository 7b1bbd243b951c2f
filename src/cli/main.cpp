// grm command-line entry point: argument parsing and wiring only. Each subcommand lives in its own
// cmd_*.cpp and registers itself (commands.h).
#include <algorithm>
#include <cstdio>
#include <exception>

#include <CLI/CLI.hpp>
#include <fmt/core.h>

#include "cli/commands.h"
#include "core/error.h"

namespace grm::cli {
std::vector<CommandDef>& command_defs() {
  static std::vector<CommandDef> defs;
  return defs;
}
}  // namespace grm::cli

int main(int argc, char** argv) {
  CLI::App app{"grm — generalist reward modeling with inference-time scaling (DeepSeek-GRM / SPCT)"};
  app.set_version_flag("--version", std::string("grm ") + GRM_VERSION);
  app.require_subcommand(1);

  auto defs = grm::cli::command_defs();
  std::stable_sort(defs.begin(), defs.end(), [](const auto& a, const auto& b) { return a.order < b.order; });
  std::vector<std::pair<CLI::App*, grm::cli::Runner>> commands;
  for (const auto& d : defs) commands.push_back(d.setup(app));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  }
  try {
    for (const auto& [sub, run] : commands)
      if (sub->parsed()) return run();
    return 2;
  } catch (const grm::Error& e) {
    fmt::print(stderr, "grm: error: {}\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    fmt::print(stderr, "grm: internal error: {}\n", e.what());
    return 3;
  }
}
