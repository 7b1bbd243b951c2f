// samples.jsonl: the stored judgments of an evaluation run, appended item by item so a run can resume and
// every Voting@k / MetaRM@k can be recomputed without a model.
//
// Two kinds of lines, in any order:
//   source line: {"source": {"bench", "file", "rows", "excluded", "malformed", "k_max", "seed", "temperature",
//                             "schedule", "template"}}  — one per --data file, written before its items
//   item line:   {"bench", "key", "greedy"?: true, "n", "best" | "label", "strict"?: true, "groups": {..},
//                 "range": [lo, hi], "samples": [{"order", "scores", "valid", "error"?, "meta"?}, ...]}
// Scores are in ORIGINAL response order. A greedy line holds the one T=0 judgment of the --greedy pass.
#pragma once
#include <cstdint>
#include <fstream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/score_range.h"
#include "core/types.h"
#include "eval/item.h"

namespace grm::eval {

struct StoredSample {
  std::vector<int> order;
  std::vector<int> scores;  // original order; empty when !valid
  bool valid = false;
  std::string error;
  std::optional<double> meta;
};

struct StoredItem {
  std::string bench, key;
  bool greedy = false;
  int n = 0;
  int best = -1;   // n >= 2
  int label = -1;  // n == 1
  bool strict = false;
  std::map<std::string, std::string> groups;
  ScoreRange range{};
  std::vector<StoredSample> samples;
};

struct StoredSource {
  std::string bench, file;
  size_t rows = 0, excluded = 0, malformed = 0;
  int k_max = 0;
  uint64_t seed = 0;
  double temperature = 0;
  std::string schedule, tmpl;
};

// Builds a stored item from an evaluation item and its sampled judgments.
StoredItem make_stored(const EvalItem& item, const std::vector<Sample>& samples, ScoreRange range, bool greedy);

nlohmann::json to_json(const StoredItem& s);
nlohmann::json to_json(const StoredSource& s);
// Throw grm::Error naming the problem.
StoredItem stored_item_from_json(const nlohmann::json& j);
StoredSource stored_source_from_json(const nlohmann::json& j);

struct StoreContents {
  std::vector<StoredSource> sources;
  std::vector<StoredItem> items;
  size_t complete_bytes = 0;    // the file up to and including its last '\n'
  bool truncated_tail = false;  // bytes after the last '\n' (an interrupted write), ignored
  std::vector<std::string> errors;  // "<path>:<line>: ..." for lines that could not be read (skipped)
};

// Reads a samples file; a missing file gives empty contents. Throws grm::Error on a read error.
StoreContents read_store(const std::string& path);

// Identity of a stored judgment set: bench, key and whether it is the greedy pass.
std::string store_id(const std::string& bench, const std::string& key, bool greedy);

// Appends lines to a samples file. Opening cuts the file back to `complete_bytes` first, so a line cut
// short by an interrupted run is dropped rather than glued to the next one.
class StoreWriter {
 public:
  StoreWriter(const std::string& path, size_t complete_bytes);
  void append(const nlohmann::json& line);  // one line, flushed
 private:
  std::string path_;
  std::ofstream out_;
};

}  // namespace grm::eval
