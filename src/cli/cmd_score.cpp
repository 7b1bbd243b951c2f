// grm score: judge n responses with k sampled judgments and vote (the paper's main job).
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include <fmt/core.h>

#include "cli/commands.h"
#include "cli/io.h"
#include "cli/model_args.h"
#include "core/error.h"
#include "core/jsonl.h"
#include "its/scorer.h"

namespace {

namespace fs = std::filesystem;

struct ScoreArgs {
  grm::cli::ModelArgs model;
  int k = 8;
  uint64_t seed = 0;
  double temperature = 0.5;
  double top_p = 1.0;
  int max_tokens = 512;
  std::string schedule = "balanced";
  std::string aggregate = "vote";
  std::string meta_model;
  int k_meta = -1;
  bool early_stop = false;
  int round_size = 4;
  std::string template_spec;
  bool explain = false;
  bool keep_text = false;
  std::string query;
  std::vector<std::string> responses;
  std::string input;
  int chunk = 32;
};

// One input line: a record, or the error that replaces it in the output.
struct Item {
  size_t line = 0;
  std::string where;  // "<source>:<line>" (empty for --query input)
  nlohmann::json id;
  std::optional<grm::Record> record;
  std::string error;
};

std::vector<Item> read_items(std::istream& in, const std::string& source) {
  std::vector<Item> items;
  std::string line;
  size_t line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    Item it;
    it.line = line_no;
    it.where = source + ":" + std::to_string(line_no);
    nlohmann::json v;
    std::string err;
    if (!grm::parse_json_line(line, v, err)) {
      it.error = source + ":" + std::to_string(line_no) + ": " + err;
    } else {
      if (v.is_object() && v.contains("id")) it.id = v["id"];
      try {
        it.record = grm::record_from_json(v);
      } catch (const grm::Error& e) {
        it.error = source + ":" + std::to_string(line_no) + ": " + e.what();
      } catch (const nlohmann::json::exception& e) {
        it.error = source + ":" + std::to_string(line_no) + ": " + e.what();
      }
    }
    items.push_back(std::move(it));
  }
  if (in.bad()) throw grm::Error(source + ": read error");
  return items;
}

void explain(const grm::Record& rec, const grm::Reward& r) {
  std::string totals;
  for (size_t i = 0; i < r.rewards.size(); ++i) totals += fmt::format("{}{:g}", i ? ", " : "", r.rewards[i]);
  fmt::print(stderr, "== record {}: best = Response {} | totals [{}] | {} valid, {} abstained, {} kept of {}\n",
             rec.id.is_null() ? std::string("-") : rec.id.dump(), r.best + 1, totals, r.valid_samples, r.abstentions,
             r.kept, r.samples_used);
  for (size_t j = 0; j < r.samples.size(); ++j) {
    const auto& s = r.samples[j];
    std::string order;
    for (size_t p = 0; p < s.order.size(); ++p) order += fmt::format("{}{}", p ? "," : "", s.order[p] + 1);
    if (!s.judgment.valid) {
      fmt::print(stderr, "  sample {} (shown {}): abstained: {}\n", j + 1, order, s.judgment.error);
      continue;
    }
    std::string scores;
    for (size_t i = 0; i < s.judgment.scores.size(); ++i) scores += fmt::format("{}{}", i ? ", " : "", s.judgment.scores[i]);
    fmt::print(stderr, "  sample {} (shown {}): scores [{}]{}\n", j + 1, order, scores,
               s.meta ? fmt::format(" meta {:.3f}", *s.meta) : "");
    for (const auto& p : s.judgment.principles)
      fmt::print(stderr, "    - {}{}\n", p.text, p.weight ? fmt::format(" ({:.0f}%)", *p.weight * 100) : "");
    if (!s.judgment.critique.empty()) fmt::print(stderr, "    critique: {}\n", s.judgment.critique);
  }
}

grm::Template pick_template(const ScoreArgs& a) {
  if (!a.template_spec.empty()) return grm::Template::resolve(a.template_spec);
  const std::string dir = a.model.model.empty() ? grm::cli::default_model_dir() : a.model.model;
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "template.txt", ec)) return grm::Template::load((fs::path(dir) / "template.txt").string());
  return grm::Template::builtin("default");
}

int run(ScoreArgs& a) {
  grm::ScorerOptions opt;
  opt.k = a.k;
  opt.seed = a.seed;
  opt.schedule = grm::parse_schedule_kind(a.schedule);
  opt.aggregate = grm::parse_aggregate(a.aggregate);
  opt.k_meta = a.k_meta;
  opt.early_stop = a.early_stop;
  opt.round_size = a.round_size;
  opt.keep_text = a.keep_text;
  opt.sampling.temperature = a.temperature;
  opt.sampling.top_p = a.top_p;
  opt.sampling.max_tokens = a.max_tokens;
  if (opt.aggregate != grm::Aggregate::Vote && a.meta_model.empty())
    throw grm::Error("--aggregate " + a.aggregate + " needs a meta model: pass --meta-model DIR");
  if (!a.meta_model.empty())
    throw grm::Error("--meta-model: loading a meta RM is not implemented yet (it arrives with SPCT training)");
  if (opt.early_stop && opt.aggregate != grm::Aggregate::Vote)
    throw grm::Error("--early-stop works with --aggregate vote only");

  // Input.
  std::vector<Item> items;
  if (!a.query.empty() || !a.responses.empty()) {
    if (a.query.empty() || a.responses.empty()) throw grm::Error("--query and at least one --response go together");
    if (!a.input.empty()) throw grm::Error("give either --query/--response or --input, not both");
    Item it;
    it.record = grm::record_from_json({{"query", a.query}, {"responses", a.responses}});
    items.push_back(std::move(it));
  } else if (!a.input.empty() && a.input != "-") {
    std::ifstream in(a.input, std::ios::binary);
    if (!in) throw grm::Error(a.input + ": cannot open");
    items = read_items(in, a.input);
  } else {
    items = read_items(std::cin, "stdin");
  }
  if (items.empty()) throw grm::Error("no records to score");

  grm::Template tmpl = pick_template(a);
  auto gen = grm::cli::open_generator(a.model);
  grm::Scorer scorer(*gen, tmpl, opt);
  const bool show_progress = isatty(STDERR_FILENO) && items.size() > 1;
  size_t failures = 0, done_records = 0;
  for (size_t start = 0; start < items.size(); start += static_cast<size_t>(a.chunk)) {
    const size_t end = std::min(items.size(), start + static_cast<size_t>(a.chunk));
    std::vector<grm::Record> records;
    for (size_t i = start; i < end; ++i)
      if (items[i].record) records.push_back(*items[i].record);
    std::vector<grm::Reward> rewards;
    if (!records.empty())
      rewards = scorer.score(records, [&](int64_t d, int64_t t) {
        if (show_progress)
          fmt::print(stderr, "\rscoring: {}/{} records, chunk {:.0f}%   ", done_records, items.size(), 100.0 * d / t);
      });
    size_t next = 0;
    for (size_t i = start; i < end; ++i) {
      nlohmann::json out;
      if (!items[i].record) {
        ++failures;
        out = {{"id", items[i].id}, {"error", items[i].error}};
        fmt::print(stderr, "grm: error: {}\n", items[i].error);
      } else {
        const grm::Reward& r = rewards[next];
        if (!r.error.empty()) {
          ++failures;
          out = {{"id", records[next].id}, {"error", r.error}};
          fmt::print(stderr, "grm: error: {}{}\n", items[i].where.empty() ? "" : items[i].where + ": ", r.error);
        } else {
          if (a.explain) explain(records[next], r);
          out = r;
          out["id"] = records[next].id;
        }
        ++next;
      }
      grm::cli::print_json_line(out);
      ++done_records;
    }
  }
  if (show_progress) fmt::print(stderr, "\rscoring: {}/{} records done{}\n", done_records, items.size(), std::string(12, ' '));
  if (failures) fmt::print(stderr, "grm: {} of {} records could not be scored\n", failures, items.size());
  return failures ? 2 : 0;
}

std::pair<CLI::App*, grm::cli::Runner> setup(CLI::App& app) {
  auto a = std::make_shared<ScoreArgs>();
  auto* sub = app.add_subcommand("score", "Judge responses with k sampled judgments and vote (inference-time scaling)");
  grm::cli::add_model_options(sub, a->model);
  sub->add_option("-k", a->k, "Sampled judgments per record")->capture_default_str()->check(CLI::Range(1, 1024));
  sub->add_option("--seed", a->seed, "Seed of schedules, sampling and tie-breaks")->capture_default_str();
  sub->add_option("--temperature", a->temperature, "Sampling temperature (the paper: 0.5)")->capture_default_str()->check(CLI::Range(0.0, 10.0));
  sub->add_option("--top-p", a->top_p, "Nucleus sampling mass")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  sub->add_option("--max-tokens", a->max_tokens, "Tokens per judgment")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  sub->add_option("--schedule", a->schedule, "Response order per sample: balanced | random | identity")->capture_default_str();
  sub->add_option("--aggregate", a->aggregate, "vote | meta | meta-weighted")->capture_default_str();
  sub->add_option("--meta-model", a->meta_model, "Meta RM directory (for --aggregate meta)");
  sub->add_option("--k-meta", a->k_meta, "Samples kept by meta voting (default k/2)");
  sub->add_flag("--early-stop", a->early_stop,
                "Sample in rounds (the first of k/2 + 1); stop once the winner can no longer change");
  sub->add_option("--round-size", a->round_size,
                  "Samples per round after the first, with --early-stop (larger: fewer rounds, fewer samples saved)")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  sub->add_option("--template", a->template_spec,
                  "Judge template: default | compact | single-binary | FILE (default: the model's template.txt, else default)");
  sub->add_flag("--explain", a->explain, "Print principles, critiques and per-sample scores on stderr");
  sub->add_flag("--keep-text", a->keep_text, "Include each sample's raw judgment text in the output");
  sub->add_option("--query", a->query, "Query text (with --response)");
  sub->add_option("--response", a->responses, "A response to judge (repeat for each)");
  sub->add_option("--input", a->input, "JSONL file of records (default: stdin)");
  sub->add_option("--chunk", a->chunk, "Records scored together per generation batch")->capture_default_str()->check(CLI::Range(1, 100000));
  sub->footer(
      "Records: {\"id\"?, \"query\": str | \"messages\": [{role, content}], \"responses\": [str, ...]} (1..16 responses).\n"
      "Output: one JSON line per record: id, rewards (summed, original order), mean_scores, best, valid_samples, "
      "abstentions, kept, samples_used, histogram, samples [{order, scores, principles, critique, valid, error?, meta?}].\n"
      "A bad record gets {id, error}; the others are still scored and the exit status is 2.");
  return {sub, [a] { return run(*a); }};
}

GRM_COMMAND(50, setup);

}  // namespace
