// Runs the grm binary as users do and captures its output.
#pragma once
#include <string>

struct RunResult {
  int rc = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};

// Runs `GRM_BINARY <args>` with `input` on stdin.
RunResult run_grm(const std::string& args, const std::string& input = "");
