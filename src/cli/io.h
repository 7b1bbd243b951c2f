// Small CLI I/O helpers shared by subcommands.
#pragma once
#include <iostream>
#include <string>

#include <nlohmann/json.hpp>

namespace grm::cli {

// All of stdin as bytes.
std::string read_all_stdin();
// One JSON value per line on stdout (invalid UTF-8 from models replaced with U+FFFD).
void print_json_line(const nlohmann::json& j);

}  // namespace grm::cli
