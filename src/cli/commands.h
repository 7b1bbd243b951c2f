// Subcommand registry. Each cmd_*.cpp defines one subcommand and registers it with a static
//   GRM_COMMAND(order, setup_function)
// where setup_function(CLI::App& app) adds the subcommand and returns {subcommand, run callback}.
// `order` sets the position in --help. No central list to edit when a command is added.
#pragma once
#include <functional>
#include <utility>
#include <vector>

#include <CLI/CLI.hpp>

namespace grm::cli {

using Runner = std::function<int()>;
using Setup = std::function<std::pair<CLI::App*, Runner>(CLI::App&)>;

struct CommandDef {
  int order;
  Setup setup;
};

std::vector<CommandDef>& command_defs();

struct CommandRegistrar {
  CommandRegistrar(int order, Setup setup) { command_defs().push_back({order, std::move(setup)}); }
};

#define GRM_CONCAT_INNER(a, b) a##b
#define GRM_CONCAT(a, b) GRM_CONCAT_INNER(a, b)
#define GRM_COMMAND(order, setup) \
  static ::grm::cli::CommandRegistrar GRM_CONCAT(grm_command_registrar_, __LINE__)(order, setup)

}  // namespace grm::cli
