#include "eval/report.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "core/jsonl.h"

namespace grm::eval {

namespace fs = std::filesystem;
using Json = nlohmann::json;


namespace {

Json pct(double v) { return std::isfinite(v) ? Json(std::round(v * 1e5) / 1e3) : Json(nullptr); }
Json interval(const Estimate& e) { return Json::array({pct(e.lo), pct(e.hi)}); }

std::string cell(double v) { return std::isfinite(v) ? fmt::format("{:.1f}", 100 * v) : "–"; }
std::string cell_ci(const Estimate& e) {
  if (!std::isfinite(e.value)) return "–";
  if (!std::isfinite(e.lo)) return cell(e.value);
  return fmt::format("{:.1f} [{:.1f}, {:.1f}]", 100 * e.value, 100 * e.lo, 100 * e.hi);
}

// Adds "voting"/"ci95", "metarm"/"metarm_ci95", "greedy"/"greedy_ci95" for number `name` to `o`.
void put_methods(Json& o, const std::map<Method, Curve>& curves, const std::string& name) {
  for (const auto& [m, curve] : curves) {
    const std::string key = method_name(m);
    const std::string ci_key = m == Method::Voting ? "ci95" : key + "_ci95";
    if (m == Method::Greedy) {
      const auto it = curve.begin()->second.find(name);
      if (it == curve.begin()->second.end()) continue;
      o[key] = pct(it->second.value);
      o[ci_key] = interval(it->second);
      continue;
    }
    Json vals = Json::object(), cis = Json::object();
    for (const auto& [k, nums] : curve)
      if (const auto it = nums.find(name); it != nums.end()) {
        vals[std::to_string(k)] = pct(it->second.value);
        cis[std::to_string(k)] = interval(it->second);
      }
    if (!vals.empty()) {
      o[key] = vals;
      o[ci_key] = cis;
    }
  }
}

std::set<std::string> sub_names(const BenchResult& b) {
  std::set<std::string> names;
  for (const auto& [m, curve] : b.curves)
    for (const auto& [k, nums] : curve)
      for (const auto& [name, e] : nums)
        if (name != "score") names.insert(name);
  return names;
}

std::string pretty(const std::string& bench) {
  static const std::map<std::string, std::string> names = {
      {kRewardBench, "RewardBench"}, {kPpePref, "PPE Preference"}, {kPpeCorrect, "PPE Correctness"},
      {kRmb, "RMB"},                 {kReaLMistake, "ReaLMistake (ROC-AUC)"}, {kSynth, "synth"}};
  const auto it = names.find(bench);
  return it == names.end() ? bench : it->second;
}

}  // namespace

Json results_json(const EvalResults& r, const Json& config) {
  Json j = {{"config", config}, {"units", "percent"}, {"ks", r.ks}};
  Json benches = Json::object();
  for (const auto& b : r.benches) {
    Json o = {{"n", b.n},           {"rows", b.rows},       {"excluded", b.excluded},
              {"malformed", b.malformed}, {"samples", b.samples}, {"invalid_samples", b.invalid}};
    Json validity = Json::object();
    for (const auto& [group, names] : b.validity)
      for (const auto& [name, counts] : names)
        validity[group][name] = {{"samples", counts.first}, {"invalid", counts.second}};
    o["validity"] = validity;
    put_methods(o, b.curves, "score");
    Json subs = Json::object();
    for (const auto& name : sub_names(b)) {
      const size_t slash = name.find('/');
      Json s = Json::object();
      put_methods(s, b.curves, name);
      subs[name.substr(0, slash)][name.substr(slash + 1)] = s;
    }
    o["sub_scores"] = subs;
    benches[b.bench] = o;
  }
  j["benchmarks"] = benches;
  Json overall = {{"benchmarks", r.overall_benches}};
  std::map<Method, Curve> curves;
  for (const auto& [m, by_k] : r.overall)
    for (const auto& [k, e] : by_k) curves[m][k]["score"] = e;
  put_methods(overall, curves, "score");
  j["overall"] = overall;
  j["warnings"] = r.warnings;
  return j;
}

std::string results_markdown(const EvalResults& r, const Json& config) {
  std::string md = "# grm eval results\n\n";
  md += fmt::format("Percent, with 95% bootstrap CIs in brackets. k_max = {}, ties = {}, temperature = {}, "
                    "{} size-k subsets per item and k, {} bootstrap rounds.\n\n",
                    r.k_max, config.value("ties", std::string("random")), config.value("temperature", 0.0),
                    config.value("subsets_per_k", 0), config.value("bootstrap_rounds", 0));
  // Summary: greedy, Voting@1, Voting@k_max, MetaRM@k_max per benchmark and Overall.
  md += "## Summary\n\n| benchmark | n | greedy | Voting@1 | Voting@" + std::to_string(r.k_max) + " | MetaRM@" +
        std::to_string(r.k_max) + " |\n|---|---|---|---|---|---|\n";
  auto at = [](const std::map<Method, Curve>& c, Method m, int k, const std::string& name) -> std::string {
    const auto mc = c.find(m);
    if (mc == c.end()) return "–";
    const auto kc = mc->second.find(k);
    if (kc == mc->second.end()) return "–";
    const auto e = kc->second.find(name);
    return e == kc->second.end() ? "–" : cell_ci(e->second);
  };
  std::map<Method, Curve> overall;
  for (const auto& [m, by_k] : r.overall)
    for (const auto& [k, e] : by_k) overall[m][k]["score"] = e;
  auto summary_row = [&](const std::string& name, const std::string& n, const std::map<Method, Curve>& c) {
    md += fmt::format("| {} | {} | {} | {} | {} | {} |\n", name, n, at(c, Method::Greedy, 1, "score"),
                      at(c, Method::Voting, 1, "score"), at(c, Method::Voting, r.k_max, "score"),
                      at(c, Method::MetaRM, r.k_max, "score"));
  };
  for (const auto& b : r.benches) summary_row(pretty(b.bench), std::to_string(b.n), b.curves);
  if (!r.overall_benches.empty()) summary_row("**Overall**", "", overall);
  md += "\nOverall = mean of RewardBench, PPE Preference, PPE Correctness and RMB over those present; "
        "ReaLMistake and synth are reported apart.\n";
  // Full curves per method.
  for (Method m : {Method::Voting, Method::MetaRM}) {
    bool any = false;
    for (const auto& b : r.benches) any |= b.curves.count(m) > 0;
    if (!any) continue;
    md += fmt::format("\n## {}@k\n\n| benchmark |", m == Method::Voting ? "Voting" : "MetaRM");
    for (int k : r.ks) md += fmt::format(" k={} |", k);
    md += "\n|---|";
    for (size_t i = 0; i < r.ks.size(); ++i) md += "---|";
    md += "\n";
    for (const auto& b : r.benches) {
      md += "| " + pretty(b.bench) + " |";
      for (int k : r.ks) md += " " + at(b.curves, m, k, "score") + " |";
      md += "\n";
    }
    if (overall.count(m)) {
      md += "| **Overall** |";
      for (int k : r.ks) md += " " + at(overall, m, k, "score") + " |";
      md += "\n";
    }
  }
  // Sub-scores per benchmark (Voting@k and greedy, point values).
  for (const auto& b : r.benches) {
    const auto names = sub_names(b);
    md += fmt::format("\n## {}\n\nn = {} items; rows read {}, excluded {}, malformed {}; {} of {} sampled judgments "
                      "did not parse.\n",
                      pretty(b.bench), b.n, b.rows, b.excluded, b.malformed, b.invalid, b.samples);
    for (const auto& [group, by_name] : b.validity) {
      if (by_name.size() < 2) continue;  // one group value: the line above says it all
      md += fmt::format("Parse-valid rate (%) by {}:", group);
      for (const auto& [name, counts] : by_name)
        md += fmt::format(" {} {}", name, cell(counts.first ? 1.0 - double(counts.second) / double(counts.first) : std::nan("")));
      md += ".\n";
    }
    if (names.empty()) continue;
    md += "\n| sub-score | greedy |";
    for (int k : r.ks) md += fmt::format(" @{} |", k);
    md += "\n|---|---|";
    for (size_t i = 0; i < r.ks.size(); ++i) md += "---|";
    md += "\n";
    for (const auto& name : names) {
      std::string g = "–";
      if (const auto gc = b.curves.find(Method::Greedy); gc != b.curves.end())
        if (const auto e = gc->second.begin()->second.find(name); e != gc->second.begin()->second.end())
          g = cell(e->second.value);
      md += "| " + name + " | " + g + " |";
      for (int k : r.ks) {
        std::string v = "–";
        if (const auto vc = b.curves.find(Method::Voting); vc != b.curves.end())
          if (const auto kc = vc->second.find(k); kc != vc->second.end())
            if (const auto e = kc->second.find(name); e != kc->second.end()) v = cell(e->second.value);
        md += " " + v + " |";
      }
      md += "\n";
    }
  }
  if (!r.warnings.empty()) {
    md += "\n## Warnings\n\n";
    for (const auto& w : r.warnings) md += "- " + w + "\n";
  }
  return md;
}

}  // namespace grm::eval
