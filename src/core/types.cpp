#include "core/types.h"

#include "core/error.h"

namespace grm {

using nlohmann::json;

Conversation Conversation::from_query(std::string query) {
  Conversation c;
  c.messages.push_back({"user", std::move(query)});
  return c;
}

const std::string& Conversation::query() const {
  for (auto it = messages.rbegin(); it != messages.rend(); ++it)
    if (it->role == "user") return it->content;
  throw Error("conversation has no user message");
}

std::vector<Message> Conversation::history() const {
  for (size_t i = messages.size(); i-- > 0;)
    if (messages[i].role == "user") return {messages.begin(), messages.begin() + static_cast<long>(i)};
  return {};
}

void to_json(json& j, const Message& m) { j = json{{"role", m.role}, {"content", m.content}}; }

void from_json(const json& j, Message& m) {
  if (!j.is_object()) throw Error("message must be an object with 'role' and 'content'");
  if (!j.contains("role") || !j["role"].is_string()) throw Error("message 'role' must be a string");
  if (!j.contains("content") || !j["content"].is_string()) throw Error("message 'content' must be a string");
  m.role = j["role"].get<std::string>();
  m.content = j["content"].get<std::string>();
  if (m.role != "user" && m.role != "assistant" && m.role != "system")
    throw Error("message role must be user, assistant or system, got '" + m.role + "'");
}

void to_json(json& j, const Conversation& c) { j = c.messages; }

void from_json(const json& j, Conversation& c) {
  if (!j.is_array()) throw Error("'messages' must be an array");
  c.messages.clear();
  for (const auto& m : j) c.messages.push_back(m.get<Message>());
  bool has_user = false;
  for (const auto& m : c.messages) has_user |= m.role == "user";
  if (!has_user) throw Error("'messages' has no user turn");
}

void to_json(json& j, const Principle& p) {
  j = json{{"text", p.text}, {"weight", p.weight ? json(*p.weight) : json(nullptr)}};
}

void from_json(const json& j, Principle& p) {
  p.text = j.at("text").get<std::string>();
  if (j.contains("weight") && !j["weight"].is_null()) p.weight = j["weight"].get<double>();
}

void to_json(json& j, const Judgment& jd) {
  j = json{{"valid", jd.valid}, {"scores", jd.scores}, {"principles", jd.principles}, {"critique", jd.critique}};
  if (!jd.valid) j["error"] = jd.error;
}

void from_json(const json& j, Judgment& jd) {
  jd.valid = j.value("valid", true);
  jd.scores = j.value("scores", std::vector<int>{});
  jd.principles = j.value("principles", std::vector<Principle>{});
  jd.critique = j.value("critique", std::string{});
  jd.error = j.value("error", std::string{});
}

void to_json(json& j, const Sample& s) {
  j = json{{"order", s.order}, {"scores", s.judgment.scores}, {"valid", s.judgment.valid},
           {"principles", s.judgment.principles}, {"critique", s.judgment.critique}};
  if (!s.judgment.valid) j["error"] = s.judgment.error;
  if (s.meta) j["meta"] = *s.meta;
  if (!s.text.empty()) j["text"] = s.text;
}

void from_json(const json& j, Sample& s) {
  s.order = j.value("order", std::vector<int>{});
  s.text = j.value("text", std::string{});
  from_json(j, s.judgment);
  if (j.contains("meta") && !j["meta"].is_null()) s.meta = j["meta"].get<double>();
}

void to_json(json& j, const Reward& r) {
  if (!r.error.empty()) {
    j = json{{"error", r.error}};
    return;
  }
  j = json{{"rewards", r.rewards},         {"mean_scores", r.mean_scores}, {"best", r.best},
           {"valid_samples", r.valid_samples}, {"abstentions", r.abstentions}, {"kept", r.kept}, {"samples_used", r.samples_used},
           {"histogram", r.histogram},     {"score_min", r.score_lo}};
  if (!r.samples.empty()) j["samples"] = r.samples;
}

}  // namespace grm
