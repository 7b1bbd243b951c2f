#include "cli/io.h"

#include <cstdio>
#include <sstream>

#include "core/jsonl.h"

namespace grm::cli {

std::string read_all_stdin() {
  std::ostringstream ss;
  ss << std::cin.rdbuf();
  return ss.str();
}

void print_json_line(const nlohmann::json& j) {
  const std::string s = dump_json(j) + "\n";
  std::fwrite(s.data(), 1, s.size(), stdout);
  std::fflush(stdout);
}

}  // namespace grm::cli
