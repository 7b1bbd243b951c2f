// A record to score: a conversation and 1..16 responses, read from JSON.
#pragma once
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/types.h"

namespace grm {

constexpr int kMaxResponses = 16;

struct Record {
  nlohmann::json id;  // copied to the output as given (string, number or null)
  Conversation conversation;
  std::vector<std::string> responses;
};

// {"id"?, "query": str | "messages": [{role, content}], "responses": [str, ...]}.
// Throws grm::Error naming the field on missing/wrong-typed fields, 0 or > 16 responses, empty strings.
Record record_from_json(const nlohmann::json& j);

// A seed for the record's sampling that depends only on its content (conversation + responses) and the
// user's seed, so a record scores the same wherever it appears in a file and however records are batched.
uint64_t record_seed(const Record& r, uint64_t seed);

}  // namespace grm
