// Benchmark loaders: one function per public format (shared/paper/facts.md, "Benchmarks and their public
// formats"). Each turns one row into zero or more items and returns how many it excluded.
#include <cctype>
#include <filesystem>
#include <functional>
#include <set>

#include "core/error.h"
#include "core/metrics.h"
#include "core/rng.h"
#include "eval/item.h"
#include "eval/rows.h"

namespace grm::eval {

namespace {

using Json = nlohmann::json;
using RowFn = std::function<size_t(const Json& row, const std::string& source, std::vector<EvalItem>& out)>;

EvalItem make_item(const std::string& bench, Conversation conv, std::vector<std::string> responses) {
  EvalItem it;
  it.bench = bench;
  it.record.conversation = std::move(conv);
  it.record.responses = std::move(responses);
  return it;
}

int binary_label(const Json& v, const std::string& name) {
  if (v.is_boolean()) return v.get<bool>() ? 1 : 0;
  if (v.is_number()) {
    const double d = v.get<double>();
    if (d == 0 || d == 1) return static_cast<int>(d);
  }
  throw Error("field '" + name + "' must be 0/1 or a boolean");
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// ---- RewardBench: prompt, chosen, rejected, subset, id -------------------------------------------------
size_t rewardbench_row(const Json& row, const std::string&, std::vector<EvalItem>& out) {
  const std::string subset = string_field(row, "subset");
  EvalItem it = make_item(kRewardBench, conversation_from(field(row, "prompt"), "prompt"),
                          {string_field(row, "chosen"), string_field(row, "rejected")});
  const std::string section = rewardbench_section(subset);
  if (section.empty()) return 1;  // prior sets and unknown subsets: outside the four sections
  it.best = 0;
  it.groups = {{"subset", subset}, {"section", section}};
  out.push_back(std::move(it));
  return 0;
}

// ---- PPE human preference: prompt, response_1, response_2, winner ------------------------------------
size_t ppe_pref_row(const Json& row, const std::string&, std::vector<EvalItem>& out) {
  const std::string winner = string_field(row, "winner");
  EvalItem it = make_item(kPpePref, conversation_from(field(row, "prompt"), "prompt"),
                          {string_field(row, "response_1"), string_field(row, "response_2")});
  if (winner == "model_a") it.best = 0;
  else if (winner == "model_b") it.best = 1;
  else if (winner.rfind("tie", 0) == 0) return 1;  // "tie" and "tie (bothbad)"
  else throw Error("field 'winner' must be model_a, model_b or tie, got '" + winner + "'");
  if (row.contains("language") && row["language"].is_string()) it.groups["language"] = row["language"].get<std::string>();
  out.push_back(std::move(it));
  return 0;
}

// ---- PPE correctness: prompt, response_1..K, scores, sampled_conflict_pairs (+ source set) ---------------
size_t ppe_correct_row(const Json& row, const std::string& source, std::vector<EvalItem>& out) {
  const Conversation conv = conversation_from(field(row, "prompt"), "prompt");
  std::vector<std::string> responses;
  for (int i = 1; row.contains("response_" + std::to_string(i)); ++i)
    responses.push_back(string_field(row, "response_" + std::to_string(i)));
  const Json& scores = field(row, "scores");
  if (!scores.is_array() || scores.size() != responses.size())
    throw Error("field 'scores' must be a list with one 0/1 per response (" + std::to_string(responses.size()) +
                " responses)");
  std::vector<int> correct;
  for (const auto& s : scores) correct.push_back(binary_label(s, "scores"));
  std::string set = source;
  for (const char* name : {"source", "benchmark"})
    if (row.contains(name) && row[name].is_string()) {
      set = row[name].get<std::string>();
      break;
    }
  const Json& pairs = field(row, "sampled_conflict_pairs");
  if (!pairs.is_array()) throw Error("field 'sampled_conflict_pairs' must be a list of index pairs");
  size_t excluded = pairs.empty() ? 1 : 0;
  const auto n = static_cast<int64_t>(responses.size());
  for (const auto& p : pairs) {
    if (!p.is_array() || p.size() != 2 || !p[0].is_number_integer() || !p[1].is_number_integer())
      throw Error("field 'sampled_conflict_pairs' must hold [i, j] pairs of 0-based indices");
    const int64_t a = p[0].get<int64_t>(), b = p[1].get<int64_t>();
    if (a < 0 || b < 0 || a >= n || b >= n || a == b)
      throw Error("conflict pair [" + std::to_string(a) + ", " + std::to_string(b) + "] out of range for " +
                  std::to_string(n) + " responses");
    if (correct[static_cast<size_t>(a)] == correct[static_cast<size_t>(b)]) {
      ++excluded;  // not a conflict: both correct or both wrong
      continue;
    }
    EvalItem it = make_item(kPpeCorrect, conv, {responses[static_cast<size_t>(a)], responses[static_cast<size_t>(b)]});
    it.best = correct[static_cast<size_t>(a)] ? 0 : 1;
    it.groups["source"] = set;
    it.key = "/" + std::to_string(a) + "-" + std::to_string(b);  // suffix; the row id is prepended
    out.push_back(std::move(it));
  }
  return excluded;
}

// ---- RMB: pairwise (chosen/reject) and best-of-N (bon_best/loser_list) ---------------------------------
std::string answer_of(const Json& v, const std::string& name) {
  if (!v.is_object()) throw Error("field '" + name + "' must be an object with 'answer'");
  return string_field(v, "answer");
}

size_t rmb_row(const Json& row, const std::string&, std::vector<EvalItem>& out) {
  const Conversation conv = conversation_from(field(row, "conversation_input"), "conversation_input");
  const std::string path = string_field(row, "category_path");
  const bool pairwise = row.contains("chosen") && row.contains("reject");
  const bool bon = row.contains("bon_best") && row.contains("loser_list");
  if (pairwise == bon) throw Error("row must have either chosen/reject (pairwise) or bon_best/loser_list (best-of-N)");
  std::vector<std::string> responses;
  if (pairwise) {
    responses = {answer_of(row["chosen"], "chosen"), answer_of(row["reject"], "reject")};
  } else {
    responses.push_back(answer_of(row["bon_best"], "bon_best"));
    const Json& losers = row["loser_list"];
    if (!losers.is_array() || losers.empty()) throw Error("field 'loser_list' must be a non-empty list");
    for (const auto& l : losers) responses.push_back(answer_of(l, "loser_list"));
  }
  EvalItem it = make_item(kRmb, conv, std::move(responses));
  it.best = 0;
  it.strict = bon;  // facts.md: a best-of-N item is correct iff the best gets the strictly highest total
  std::string top = path.substr(0, path.find('/'));
  if (lower(top) == "helpfulness") top = "Helpfulness";
  else if (lower(top) == "harmlessness") top = "Harmlessness";
  it.groups = {{"category", top}, {"kind", pairwise ? "Pairwise" : "BoN"}};
  out.push_back(std::move(it));
  return 0;
}

// ---- ReaLMistake: input, llm_response, label (error | no_error) ----------------------------------------
size_t realmistake_row(const Json& row, const std::string&, std::vector<EvalItem>& out) {
  const std::string label = string_field(row, "label");
  EvalItem it = make_item(kReaLMistake, conversation_from(field(row, "input"), "input"), {string_field(row, "llm_response")});
  if (label == "no_error") it.label = 1;
  else if (label == "error") it.label = 0;
  else throw Error("field 'label' must be error or no_error, got '" + label + "'");
  if (row.contains("task_name") && row["task_name"].is_string()) it.groups["task"] = row["task_name"].get<std::string>();
  out.push_back(std::move(it));
  return 0;
}

// ---- synth: id, domain, query | messages, responses, best | label, template ---------------------------
size_t synth_row(const Json& row, const std::string&, std::vector<EvalItem>& out) {
  const Conversation conv =
      row.contains("messages") ? conversation_from(row["messages"], "messages") : conversation_from(field(row, "query"), "query");
  const Json& rs = field(row, "responses");
  if (!rs.is_array()) throw Error("field 'responses' must be a list of strings");
  std::vector<std::string> responses;
  for (const auto& r : rs) {
    if (!r.is_string()) throw Error("field 'responses' must be a list of strings");
    responses.push_back(r.get<std::string>());
  }
  EvalItem it = make_item(kSynth, conv, std::move(responses));
  it.groups["domain"] = row.contains("domain") && row["domain"].is_string() ? row["domain"].get<std::string>() : "unknown";
  if (it.record.responses.size() == 1) {
    it.label = binary_label(field(row, "label"), "label");
  } else {
    const Json& b = field(row, "best");
    if (!b.is_number_integer()) throw Error("field 'best' must be a 0-based response index");
    it.best = b.get<int>();
    if (it.best < 0 || static_cast<size_t>(it.best) >= it.record.responses.size())
      throw Error("field 'best' = " + std::to_string(it.best) + " out of range for " +
                  std::to_string(it.record.responses.size()) + " responses");
  }
  // As src/synth writes it: compact for n >= 2 (1..10), single-binary for n = 1 (0/1) when absent.
  it.tmpl = row.contains("template") ? string_field(row, "template")
                                     : (it.record.responses.size() == 1 ? "single-binary" : "compact");
  if (it.tmpl != "compact" && it.tmpl != "single-binary" && it.tmpl != "default")
    throw Error("field 'template' must be compact, single-binary or default, got '" + it.tmpl + "'");
  out.push_back(std::move(it));
  return 0;
}

std::string row_id(const std::string& bench, const Json& row) {
  if (bench == kPpePref || bench == kPpeCorrect) return id_text(row, "question_id");
  if (bench == kRmb) return row.contains("bon_uid") ? id_text(row, "bon_uid") : id_text(row, "pair_uid");
  return id_text(row, "id");
}

RowFn row_fn(const std::string& bench) {
  if (bench == kRewardBench) return rewardbench_row;
  if (bench == kPpePref) return ppe_pref_row;
  if (bench == kPpeCorrect) return ppe_correct_row;
  if (bench == kRmb) return rmb_row;
  if (bench == kReaLMistake) return realmistake_row;
  return synth_row;
}

}  // namespace

LoadResult load_bench(const std::string& bench, const std::string& path, size_t limit) {
  check_bench_name(bench);
  LoadResult res;
  res.bench = bench;
  res.source = std::filesystem::path(path).filename().string();
  const std::string stem = std::filesystem::path(path).stem().string();  // PPE correctness: the default set name
  const RowFn fn = row_fn(bench);
  std::set<std::string> keys;
  const std::vector<Row> rows = read_rows(path);
  for (size_t r = 0; r < rows.size(); ++r) {
    if (limit && res.items.size() >= limit) break;
    ++res.rows;
    const Row& row = rows[r];
    if (!row.error.empty()) {
      ++res.malformed;
      res.errors.push_back(row.where + ": " + row.error);
      continue;
    }
    std::vector<EvalItem> got;
    try {
      res.excluded += fn(row.value, stem, got);
      for (auto& it : got) {
        const auto n = it.record.responses.size();
        if (n < 1 || n > static_cast<size_t>(kMaxResponses))
          throw Error(std::to_string(n) + " responses (grm judges 1 to " + std::to_string(kMaxResponses) + ")");
      }
    } catch (const Error& e) {
      ++res.malformed;
      res.errors.push_back(row.where + ": " + e.what());
      continue;
    } catch (const nlohmann::json::exception& e) {
      ++res.malformed;
      res.errors.push_back(row.where + ": " + e.what());
      continue;
    }
    std::string id = row_id(bench, row.value);
    if (id.empty()) id = "#" + std::to_string(r + 1);
    for (auto& it : got) {
      it.key = res.source + ":" + id + it.key;
      if (!keys.insert(it.key).second) {  // a repeated id: disambiguate by row
        it.key += "~" + std::to_string(r + 1);
        keys.insert(it.key);
      }
      it.record.id = it.key;
      shuffle_responses(it);
      res.items.push_back(std::move(it));
    }
  }
  if (limit && res.items.size() > limit) res.items.resize(limit);
  return res;
}

}  // namespace grm::eval
