// Synthetic generalist reward suite with known ground truth: short queries, 1-4 responses, gold principles,
// per-response analyses and integer scores, and the gold judgment text. Used to train and evaluate a small
// generative reward model. See docs/synth.md for the domains and how the test split is held out.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/schedule.h"
#include "core/score_range.h"
#include "core/types.h"

namespace grm::synth {

enum class Split { Train, Dev, Test };

Split parse_split(const std::string& name);  // "train" | "dev" | "test"; throws grm::Error otherwise
std::string to_string(Split split);

struct SynthRecord {
  std::string id;
  std::string domain;    // one of domains()
  std::string tmpl;      // "compact" (n >= 2, scores 1..10) or "single-binary" (n == 1, scores 0/1)
  std::string key;       // the held-out entities of the record ("457", "Peru|Kenya", ...), '|'-separated
  std::string query;
  std::vector<std::string> responses;
  int best = -1;   // n >= 2: index of the unique max of `scores`; -1 when n == 1
  int label = -1;  // n == 1: 1 correct / 0 incorrect; -1 when n >= 2
  std::vector<Principle> principles;  // weights are fractions summing to 1 (multiples of 0.1)
  std::string working;                // worked reference check shown before the analyses; "" when none
  std::vector<std::string> analyses;  // one per response, ORIGINAL order; no trailing period
  std::vector<int> scores;            // gold scores, ORIGINAL order
  std::string target;                 // gold_target(*this, identity order)

  int n() const { return static_cast<int>(responses.size()); }
  ScoreRange range() const;  // {1, 10} for compact, {0, 1} for single-binary
};

// The domain names, in generation order: "arith", "string", "instruct", "help", "safety".
const std::vector<std::string>& domains();

// `n` records of `split`, deterministic in (split, n, seed); record i depends only on (split, seed, i), so a
// longer suite extends a shorter one. Splits draw from disjoint seed streams; test draws its entities and
// operands from pools disjoint from train/dev (docs/synth.md).
std::vector<SynthRecord> generate_suite(Split split, int n, uint64_t seed);
SynthRecord generate_record(Split split, uint64_t seed, int index);

// The gold judgment for the responses shown in `order` (order[pos] = original index):
//   Specific Criteria: <p1> (Weight: 40%); <p2> (Weight: 60%)
//   Analysis: <working>. Response 1: <analysis of the response shown first>. Response 2: ...
// (the "<working>. " part only when the record has one)
//   Scores: \boxed{s_shown_1, s_shown_2}
// Throws grm::Error when `order` is not a permutation of the record's responses.
std::string gold_target(const SynthRecord& r, const Order& order);

void to_json(nlohmann::json& j, const SynthRecord& r);
nlohmann::json to_json(const SynthRecord& r);
// Reads a record written by to_json; checks fields, sizes and ground truth. Throws grm::Error naming the
// field. "target" and "key" are optional (target is recomputed when absent).
SynthRecord synth_from_json(const nlohmann::json& j);

// Which split's pools the '|'-separated entities of `key` belong to: "train" (train and dev share pools),
// "test", or "" when they are unknown or mixed.
std::string split_of_key(const std::string& domain, const std::string& key);

// Writes one JSON record per line to `path` atomically (temp file in the same directory + rename).
void write_jsonl_atomic(const std::vector<SynthRecord>& records, const std::string& path);

}  // namespace grm::synth
