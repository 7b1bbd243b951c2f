// Plain data types shared by every layer, with their JSON conversion.
#pragma once
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace grm {

struct Message {
  std::string role;  // "system" | "user" | "assistant"
  std::string content;
};

// A multi-turn conversation; the last user turn is the query being judged.
struct Conversation {
  std::vector<Message> messages;

  static Conversation from_query(std::string query);
  // The content of the last user message; throws grm::Error when there is none.
  const std::string& query() const;
  // Everything before the last user message (the context), possibly empty.
  std::vector<Message> history() const;
};

struct Principle {
  std::string text;
  std::optional<double> weight;  // fraction in [0, 1] when the judge wrote "Weight: 40%"
};

// One judgment. `scores` are in ORIGINAL response order once mapped back (parse() returns them in shown
// order; map_back() reorders them).
struct Judgment {
  std::vector<Principle> principles;
  std::string critique;
  std::vector<int> scores;
  bool valid = false;
  std::string error;  // reason when !valid
};

// One sampled judgment: which order the responses were shown in, the raw text, the parsed judgment
// (scores in original order), and an optional meta score.
struct Sample {
  std::vector<int> order;  // order[pos] = original index of the response shown at position pos
  std::string text;
  Judgment judgment;
  std::optional<double> meta;
};

// Aggregated result for one record.
struct Reward {
  std::vector<double> rewards;      // summed totals, original order
  std::vector<double> mean_scores;  // totals / valid samples used (0 when none)
  int best = -1;                    // argmax of rewards, seeded random tie-break; -1 if no valid sample
  int valid_samples = 0;  // samples whose judgment parsed
  int abstentions = 0;    // samples whose judgment did not parse (never scored as 0)
  int kept = 0;           // valid samples summed (all of them for Vote; the top k_meta for MetaVote)
  int samples_used = 0;
  // histogram[i][s - lo] = how many kept samples gave response i the score s
  std::vector<std::vector<int>> histogram;
  int score_lo = 1;
  std::vector<Sample> samples;
  // Non-empty: the record could not be judged (e.g. its prompt does not fit the model's context). Its
  // samples are then abstentions carrying the same reason, and it serializes as {"error": ...} only.
  std::string error;
};

void to_json(nlohmann::json& j, const Message& m);
void from_json(const nlohmann::json& j, Message& m);
void to_json(nlohmann::json& j, const Conversation& c);
void from_json(const nlohmann::json& j, Conversation& c);
void to_json(nlohmann::json& j, const Principle& p);
void from_json(const nlohmann::json& j, Principle& p);
void to_json(nlohmann::json& j, const Judgment& jd);
void from_json(const nlohmann::json& j, Judgment& jd);
void to_json(nlohmann::json& j, const Sample& s);
void from_json(const nlohmann::json& j, Sample& s);
void to_json(nlohmann::json& j, const Reward& r);

}  // namespace grm
