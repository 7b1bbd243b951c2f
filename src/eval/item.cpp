#include "eval/item.h"

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "core/rng.h"

namespace grm::eval {

const std::vector<std::string>& bench_names() {
  static const std::vector<std::string> names = {kRewardBench, kPpePref, kPpeCorrect, kRmb, kReaLMistake, kSynth};
  return names;
}

void check_bench_name(const std::string& name) {
  const auto& names = bench_names();
  if (std::find(names.begin(), names.end(), name) == names.end())
    throw Error("unknown benchmark '" + name + "' (expected rewardbench, ppe-pref, ppe-correct, rmb, realmistake or synth)");
}

bool in_overall(const std::string& bench) {
  return bench == kRewardBench || bench == kPpePref || bench == kPpeCorrect || bench == kRmb;
}

Conversation conversation_from(const nlohmann::json& v, const std::string& field) {
  if (v.is_string()) return Conversation::from_query(v.get<std::string>());
  if (!v.is_array() || v.empty())
    throw Error("field '" + field + "' must be a string or a non-empty list of {role, content} messages");
  Conversation c;
  for (const auto& m : v) {
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || !m["role"].is_string() ||
        !m["content"].is_string())
      throw Error("field '" + field + "' must hold {role, content} messages with string values");
    std::string role = m["role"].get<std::string>();
    if (role == "human") role = "user";
    if (role == "gpt" || role == "bot") role = "assistant";
    if (role != "user" && role != "assistant" && role != "system")
      throw Error("field '" + field + "': message role must be user, assistant or system, got '" + role + "'");
    c.messages.push_back({role, m["content"].get<std::string>()});
  }
  if (std::none_of(c.messages.begin(), c.messages.end(), [](const Message& m) { return m.role == "user"; }))
    throw Error("field '" + field + "' has no user turn");
  return c;
}

void shuffle_responses(EvalItem& item) {
  const size_t n = item.record.responses.size();
  if (n < 2 || item.best < 0) return;
  std::vector<size_t> perm(n);  // new position p holds old response perm[p]
  std::iota(perm.begin(), perm.end(), size_t{0});
  Rng rng(record_seed(item.record, 0x5348554646u));  // "SHUFF": depends on the content only
  rng.shuffle(perm);
  std::vector<std::string> shuffled(n);
  int best = -1;
  for (size_t p = 0; p < n; ++p) {
    shuffled[p] = std::move(item.record.responses[perm[p]]);
    if (perm[p] == static_cast<size_t>(item.best)) best = static_cast<int>(p);
  }
  item.record.responses = std::move(shuffled);
  item.best = best;
}

}  // namespace grm::eval
