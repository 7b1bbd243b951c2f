#include "synth/synth.h"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"
#include "core/rng.h"
#include "synth/draft.h"

namespace grm::synth {

using namespace detail;

namespace {

struct Domain {
  std::string name;
  Builder build;
  std::string (*key_split)(const std::string&);
};

const std::vector<Domain>& domain_table() {
  static const std::vector<Domain> table = {
      {"arith", build_arith, key_split_arith},          {"string", build_string, key_split_string},
      {"instruct", build_instruct, key_split_instruct}, {"help", build_help, key_split_help},
      {"safety", build_safety, key_split_safety}};
  return table;
}

constexpr size_t kMaxBytes = 1400;

uint64_t split_tag(Split s) { return s == Split::Train ? 0x7261696eull : s == Split::Dev ? 0x646576ull : 0x74657374ull; }

std::vector<Principle> to_principles(const std::vector<Crit>& crits) {
  std::vector<Principle> out;
  for (const auto& c : crits) out.push_back({c.text, c.weight / 100.0});
  return out;
}

// The record a finished draft becomes: `n` responses in a random original order.
bool assemble(Rng& rng, const Draft& d, int n, int label, SynthRecord& r) {
  r.query = d.query;
  r.key = d.key;
  r.principles = to_principles(d.crits);
  r.working = d.working;
  r.responses.clear();
  r.analyses.clear();
  r.scores.clear();
  if (n == 1) {
    const size_t pick_at = label == 1 ? 0 : 1;
    if (d.cands.size() <= pick_at || d.cands[pick_at].ok != (label == 1)) return false;
    const Cand& c = d.cands[pick_at];
    r.tmpl = "single-binary";
    r.responses = {c.text};
    r.analyses = {c.analysis};
    r.scores = {label};
    r.label = label;
    r.best = -1;
    return true;
  }
  if (static_cast<int>(d.cands.size()) != n) return false;
  std::vector<int> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), 0);
  rng.shuffle(perm);  // perm[original position] = candidate index
  r.tmpl = "compact";
  r.label = -1;
  for (int cand : perm) {
    const Cand& c = d.cands[static_cast<size_t>(cand)];
    r.responses.push_back(c.text);
    r.analyses.push_back(c.analysis);
    r.scores.push_back(weighted_score(d.crits, c.sub));
    if (cand == 0) r.best = static_cast<int>(r.responses.size()) - 1;
  }
  for (int i = 0; i < n; ++i)
    if (i != r.best && r.scores[static_cast<size_t>(i)] >= r.scores[static_cast<size_t>(r.best)]) return false;
  // Every correct / acceptable response outscores every incorrect one.
  for (const Cand& good : d.cands)
    for (const Cand& bad : d.cands)
      if (good.ok && !bad.ok && weighted_score(d.crits, good.sub) <= weighted_score(d.crits, bad.sub)) return false;
  return true;
}

// Bytes of the compact prompt plus the gold target, estimated from the template's fixed text (~430 bytes),
// the response blocks (~66 bytes of markup each, with the "Response i: " of the analysis) and the weights.
size_t estimated_bytes(const SynthRecord& r) {
  size_t total = 470 + r.query.size() + r.working.size();
  for (int i = 0; i < r.n(); ++i) total += 66 + r.responses[static_cast<size_t>(i)].size() + r.analyses[static_cast<size_t>(i)].size();
  for (const auto& p : r.principles) total += 16 + p.text.size();
  return total;
}

std::string weight_text(double w) { return std::to_string(static_cast<int>(std::lround(w * 100))) + "%"; }

// Ground-truth checks shared by synth_from_json and (indirectly) the tests.
void check_record(const SynthRecord& r) {
  const int n = r.n();
  if (n < 1 || n > 16) throw Error("'responses' must hold 1 to 16 strings");
  for (const auto& s : r.responses)
    if (s.empty()) throw Error("'responses' holds an empty string");
  if (static_cast<int>(r.scores.size()) != n) throw Error("'scores' must have one score per response");
  if (static_cast<int>(r.analyses.size()) != n) throw Error("'analyses' must have one analysis per response");
  const ScoreRange range = r.range();
  for (int s : r.scores)
    if (!range.contains(s)) throw Error("score " + std::to_string(s) + " out of range for template " + r.tmpl);
  if (n == 1) {
    if (r.tmpl != "single-binary") throw Error("'template' must be single-binary for one response");
    if (r.label != 0 && r.label != 1) throw Error("'label' must be 0 or 1");
    if (r.scores[0] != r.label) throw Error("'scores' disagrees with 'label'");
  } else {
    if (r.tmpl != "compact") throw Error("'template' must be compact for two or more responses");
    if (r.best < 0 || r.best >= n) throw Error("'best' out of range");
    for (int i = 0; i < n; ++i)
      if (i != r.best && r.scores[static_cast<size_t>(i)] >= r.scores[static_cast<size_t>(r.best)])
        throw Error("'best' is not the unique maximum of 'scores'");
  }
}

}  // namespace

Split parse_split(const std::string& name) {
  if (name == "train") return Split::Train;
  if (name == "dev") return Split::Dev;
  if (name == "test") return Split::Test;
  throw Error("unknown split '" + name + "' (expected train, dev or test)");
}

std::string to_string(Split split) {
  return split == Split::Train ? "train" : split == Split::Dev ? "dev" : "test";
}

ScoreRange SynthRecord::range() const { return tmpl == "single-binary" ? ScoreRange{0, 1} : ScoreRange{1, 10}; }

const std::vector<std::string>& domains() {
  static const std::vector<std::string> names = [] {
    std::vector<std::string> v;
    for (const auto& d : domain_table()) v.push_back(d.name);
    return v;
  }();
  return names;
}

SynthRecord generate_record(Split split, uint64_t seed, int index) {
  Rng rng(derive_seed(derive_seed(seed, split_tag(split)), static_cast<uint64_t>(index)));
  const auto& table = domain_table();
  const Domain& dom = table[rng.below(table.size())];
  // n mix: 1/4 single, 1/2 pairs, 1/8 triples, 1/8 quadruples.
  const int u = static_cast<int>(rng.below(8));
  const int n = u < 2 ? 1 : u < 6 ? 2 : u == 6 ? 3 : 4;
  const int label = n == 1 ? static_cast<int>(rng.below(2)) : -1;
  SynthRecord r;
  r.id = to_string(split) + "-" + std::to_string(seed) + "-" + std::to_string(index);
  r.domain = dom.name;
  for (int tries = 0;; ++tries) {
    if (tries >= 1000) throw Error("synth: cannot build a record for domain " + dom.name);
    const Draft d = dom.build(rng, split == Split::Test, n == 1 ? 2 : n, n == 1);
    // Redraw the rare record that would not fit a tiny model's context comfortably.
    if (assemble(rng, d, n, label, r) && estimated_bytes(r) <= kMaxBytes) break;
  }
  r.target = gold_target(r, make_schedule(ScheduleKind::Identity, r.n(), 1, 0)[0]);
  return r;
}

std::vector<SynthRecord> generate_suite(Split split, int n, uint64_t seed) {
  if (n < 0) throw Error("synth: the number of records must be >= 0");
  std::vector<SynthRecord> out;
  out.reserve(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) out.push_back(generate_record(split, seed, i));
  return out;
}

std::string gold_target(const SynthRecord& r, const Order& order) {
  if (!is_permutation_of(order, r.n()) || r.analyses.size() != r.responses.size() || r.scores.size() != r.responses.size())
    throw Error("gold_target: order is not a permutation of the record's " + std::to_string(r.n()) + " responses");
  std::string out = "Specific Criteria: ";
  for (size_t i = 0; i < r.principles.size(); ++i) {
    const Principle& p = r.principles[i];
    out += (i ? "; " : "") + p.text;
    if (p.weight) out += " (Weight: " + weight_text(*p.weight) + ")";
  }
  out += "\nAnalysis:";
  if (!r.working.empty()) out += " " + r.working + ".";
  for (size_t pos = 0; pos < order.size(); ++pos)
    out += " Response " + std::to_string(pos + 1) + ": " + r.analyses[static_cast<size_t>(order[pos])] + ".";
  out += "\nScores: \\boxed{";
  for (size_t pos = 0; pos < order.size(); ++pos)
    out += (pos ? ", " : "") + std::to_string(r.scores[static_cast<size_t>(order[pos])]);
  return out + "}";
}

void to_json(nlohmann::json& j, const SynthRecord& r) {
  j = nlohmann::json{{"id", r.id}, {"domain", r.domain}, {"template", r.tmpl}, {"key", r.key},
                     {"query", r.query}, {"responses", r.responses}};
  if (r.n() >= 2) j["best"] = r.best;
  else j["label"] = r.label;
  j["principles"] = r.principles;
  if (!r.working.empty()) j["working"] = r.working;
  j["analyses"] = r.analyses;
  j["scores"] = r.scores;
  j["target"] = r.target;
}

nlohmann::json to_json(const SynthRecord& r) {
  nlohmann::json j;
  to_json(j, r);
  return j;
}

SynthRecord synth_from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw Error("synth record must be a JSON object");
  auto str = [&](const char* field, bool required) -> std::string {
    if (!j.contains(field)) {
      if (required) throw Error(std::string("synth record has no '") + field + "'");
      return "";
    }
    if (!j[field].is_string()) throw Error(std::string("'") + field + "' must be a string");
    return j[field].get<std::string>();
  };
  SynthRecord r;
  r.id = j.contains("id") && j["id"].is_string() ? j["id"].get<std::string>() : (j.contains("id") ? j["id"].dump() : "");
  r.domain = str("domain", true);
  r.query = str("query", true);
  r.key = str("key", false);
  r.working = str("working", false);
  try {
    r.responses = j.at("responses").get<std::vector<std::string>>();
    r.analyses = j.at("analyses").get<std::vector<std::string>>();
    r.scores = j.at("scores").get<std::vector<int>>();
    r.principles = j.at("principles").get<std::vector<Principle>>();
    if (j.contains("best")) r.best = j["best"].get<int>();
    if (j.contains("label")) r.label = j["label"].get<int>();
  } catch (const nlohmann::json::exception& e) {
    throw Error(std::string("synth record: ") + e.what());
  }
  r.tmpl = j.contains("template") ? str("template", true) : (r.n() == 1 ? "single-binary" : "compact");
  check_record(r);
  r.target = j.contains("target") ? str("target", true) : gold_target(r, make_schedule(ScheduleKind::Identity, r.n(), 1, 0)[0]);
  return r;
}

std::string split_of_key(const std::string& domain, const std::string& key) {
  const auto& table = domain_table();
  const auto it = std::find_if(table.begin(), table.end(), [&](const Domain& d) { return d.name == domain; });
  if (it == table.end() || key.empty()) return "";
  std::string result;
  size_t start = 0;
  for (;;) {
    const size_t bar = key.find('|', start);
    const std::string s = it->key_split(key.substr(start, bar == std::string::npos ? std::string::npos : bar - start));
    if (s.empty() || (!result.empty() && s != result)) return "";
    result = s;
    if (bar == std::string::npos) return result;
    start = bar + 1;
  }
}

void write_jsonl_atomic(const std::vector<SynthRecord>& records, const std::string& path) {
  write_atomic(path, [&](std::ostream& f) {
    for (const auto& r : records) f << dump_json(to_json(r)) << '\n';
  });
}

}  // namespace grm::synth
