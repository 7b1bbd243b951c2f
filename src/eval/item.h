// Evaluation items: a benchmark row turned into a Record to judge plus its ground truth and grouping keys.
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/types.h"
#include "its/record.h"

namespace grm::eval {

// Benchmark names as written on the command line and in samples.jsonl.
inline constexpr const char* kRewardBench = "rewardbench";
inline constexpr const char* kPpePref = "ppe-pref";
inline constexpr const char* kPpeCorrect = "ppe-correct";
inline constexpr const char* kRmb = "rmb";
inline constexpr const char* kReaLMistake = "realmistake";
inline constexpr const char* kSynth = "synth";

// All benchmark names, in report order. check_bench_name throws grm::Error on an unknown name.
const std::vector<std::string>& bench_names();
void check_bench_name(const std::string& name);
// Benchmarks whose headline enters Overall (the paper's four).
bool in_overall(const std::string& bench);

struct EvalItem {
  std::string bench;
  std::string key;  // unique within the benchmark: "<data file name>:<row id>" (plus "/i-j" for a PPE pair)
  Record record;
  int best = -1;        // n >= 2: index of the best response in record.responses
  int label = -1;       // n == 1: 1 = positive (correct / no_error), 0 = negative
  bool strict = false;  // a tie at the top is wrong whatever the tie policy (RMB best-of-N)
  std::map<std::string, std::string> groups;  // "subset", "source", "category", "kind", "domain", ...
  std::string tmpl;  // builtin template this item must be judged with ("" = the run's template)
};

// What loading one data file produced. Malformed rows are reported (with their line or array index) in
// `errors` and skipped; excluded rows are well-formed but not evaluated (PPE ties, RewardBench subsets
// outside the four sections, PPE conflict pairs whose two responses score the same).
struct LoadResult {
  std::string bench;
  std::string source;  // data file name (without directories); prefixes item keys
  std::vector<EvalItem> items;
  size_t rows = 0;
  size_t excluded = 0;
  size_t malformed = 0;
  std::vector<std::string> errors;
};

// Loads `path` (a JSON array of rows or JSONL) as benchmark `bench`. `limit` > 0 keeps the first `limit`
// items. Response lists of n >= 2 are put in a seeded order that depends only on their content, so the
// best response is not always first (it matters for the greedy pass, which shows the stored order).
// Throws grm::Error when the file cannot be read or is not JSON at all.
LoadResult load_bench(const std::string& bench, const std::string& path, size_t limit = 0);

// A conversation from a benchmark field: a string (one user turn) or a list of {role, content, ...}
// messages (extra fields such as RMB's `language` ignored). Throws grm::Error naming `field`.
Conversation conversation_from(const nlohmann::json& v, const std::string& field);

// Puts the responses of an n >= 2 item in an order seeded by their content and updates `best`.
void shuffle_responses(EvalItem& item);

}  // namespace grm::eval
