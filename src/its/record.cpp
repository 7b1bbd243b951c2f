#include "its/record.h"

#include "core/error.h"
#include "core/rng.h"

namespace grm {

Record record_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("record must be a JSON object");
  Record r;
  if (j.contains("id")) r.id = j["id"];
  const bool has_query = j.contains("query"), has_messages = j.contains("messages");
  if (has_query == has_messages) throw Error("record needs exactly one of 'query' or 'messages'");
  if (has_query) {
    if (!j["query"].is_string()) throw Error("'query' must be a string");
    r.conversation = Conversation::from_query(j["query"].get<std::string>());
  } else {
    from_json(j["messages"], r.conversation);
  }
  if (!j.contains("responses")) throw Error("record has no 'responses'");
  const auto& rs = j["responses"];
  if (!rs.is_array()) throw Error("'responses' must be an array of strings");
  if (rs.empty() || rs.size() > static_cast<size_t>(kMaxResponses))
    throw Error("'responses' must hold 1 to " + std::to_string(kMaxResponses) + " strings, got " + std::to_string(rs.size()));
  for (size_t i = 0; i < rs.size(); ++i) {
    if (!rs[i].is_string()) throw Error("'responses'[" + std::to_string(i) + "] must be a string");
    r.responses.push_back(rs[i].get<std::string>());
  }
  return r;
}

uint64_t record_seed(const Record& r, uint64_t seed) {
  // FNV-1a over the record's content, with separators that cannot occur inside the length-prefixed fields.
  uint64_t h = 0xcbf29ce484222325ull;
  auto mix = [&](const std::string& s) {
    const std::string len = std::to_string(s.size()) + ":";
    for (unsigned char c : len) h = (h ^ c) * 0x100000001b3ull;
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  };
  for (const auto& m : r.conversation.messages) {
    mix(m.role);
    mix(m.content);
  }
  for (const auto& s : r.responses) mix(s);
  return derive_seed(seed, h);
}

}  // namespace grm
