#include "eval/runner.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "eval/report.h"
#include "eval/store.h"
#include "its/scorer.h"

namespace grm::eval {

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void warn(const std::string& msg) { fmt::print(stderr, "grm: warning: {}\n", msg); }

std::string duration(double s) {
  if (!(s >= 0) || s > 1e8) return "?";
  const auto t = static_cast<long>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m", t / 3600, (t % 3600) / 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

class Progress {
 public:
  Progress(bool on, size_t items, int64_t samples) : on_(on), items_(items), samples_(samples), start_(Clock::now()) {}
  void update(size_t items_done, int64_t samples_done) {
    if (!on_ || samples_ == 0) return;
    const double el = std::chrono::duration<double>(Clock::now() - start_).count();
    const double rate = el > 0 ? static_cast<double>(samples_done) / el : 0;
    fmt::print(stderr, "\rsampling: {}/{} items, {}/{} judgments, {:.1f}/s, elapsed {}, ETA {}    ", items_done, items_,
               samples_done, samples_, rate, duration(el),
               rate > 0 ? duration(static_cast<double>(samples_ - samples_done) / rate) : std::string("?"));
  }
  void finish() {
    if (on_ && samples_ > 0) fmt::print(stderr, "\n");
  }

 private:
  bool on_;
  size_t items_;
  int64_t samples_;
  Clock::time_point start_;
};

struct Job {
  const EvalItem* item;
  bool greedy;
};

// Samples every job (grouped by template, `chunk` items per generation batch) and appends each item's
// samples to the store as soon as its batch is done.
void sample_jobs(const std::vector<Job>& jobs, const EvalOptions& opt, const ModelHooks& hooks, const Template& base,
                 StoreWriter& writer) {
  ScorerOptions so;
  so.k = opt.k_max;
  so.schedule = parse_schedule_kind(opt.schedule);
  so.seed = opt.seed;
  so.sampling.temperature = opt.temperature;
  so.sampling.top_p = opt.top_p;
  so.sampling.max_tokens = opt.max_tokens;
  ScorerOptions go = so;  // the greedy pass: one T=0 judgment in the stored order
  go.k = 1;
  go.schedule = ScheduleKind::Identity;
  go.sampling.temperature = 0;
  std::map<std::pair<std::string, bool>, std::vector<const EvalItem*>> groups;
  int64_t total = 0;
  for (const auto& j : jobs) {
    groups[{j.item->tmpl, j.greedy}].push_back(j.item);
    total += j.greedy ? 1 : opt.k_max;
  }
  const auto generator = hooks.open_generator();
  if (!generator) throw Error("no model to sample with");
  Progress progress(opt.progress, jobs.size(), total);
  size_t items_done = 0;
  int64_t samples_done = 0;
  for (const auto& [key, items] : groups) {
    const auto& [tmpl_name, greedy] = key;
    const Template tmpl = tmpl_name.empty() ? base : Template::builtin(tmpl_name);
    const Scorer scorer(*generator, tmpl, greedy ? go : so);
    const int per_item = greedy ? 1 : opt.k_max;
    for (size_t start = 0; start < items.size(); start += static_cast<size_t>(opt.chunk)) {
      const size_t end = std::min(items.size(), start + static_cast<size_t>(opt.chunk));
      std::vector<Record> records;
      for (size_t i = start; i < end; ++i) records.push_back(items[i]->record);
      const auto rewards = scorer.score(records, [&](int64_t d, int64_t) { progress.update(items_done, samples_done + d); });
      for (size_t i = start; i < end; ++i)
        writer.append(to_json(make_stored(*items[i], rewards[i - start].samples, tmpl.range(), greedy)));
      items_done += end - start;
      samples_done += static_cast<int64_t>(end - start) * per_item;
      progress.update(items_done, samples_done);
    }
  }
  progress.finish();
}

// The last source line of each (bench, file), optionally restricted to `keep`.
std::vector<StoredSource> latest_sources(const std::vector<StoredSource>& all,
                                         const std::set<std::pair<std::string, std::string>>* keep) {
  std::map<std::pair<std::string, std::string>, StoredSource> last;
  for (const auto& s : all)
    if (!keep || keep->count({s.bench, s.file})) last[{s.bench, s.file}] = s;
  std::vector<StoredSource> out;
  for (auto& [_, s] : last) out.push_back(s);
  return out;
}

void report_store_problems(const StoreContents& c, const std::string& path) {
  for (const auto& e : c.errors) warn("skipping unreadable line: " + e);
  if (c.truncated_tail) warn(path + ": ignoring an incomplete last line (an interrupted run)");
}

EvalSummary finish(const EvalOptions& opt, std::vector<StoredItem> items, const std::vector<StoredSource>& sources,
                   nlohmann::json config) {
  EvalSummary sum;
  AggregateOptions ao;
  ao.ties = opt.ties;
  ao.max_subsets = opt.subsets;
  ao.bootstrap = opt.bootstrap;
  ao.seed = opt.seed;
  sum.results = aggregate_results(items, sources, ao);
  for (const auto& w : sum.results.warnings) warn(w);
  config["ties"] = to_string(opt.ties);
  config["subsets_per_k"] = opt.subsets;
  config["bootstrap_rounds"] = opt.bootstrap;
  const fs::path out(opt.out_dir);
  write_file_atomic((out / "results.json").string(), results_json(sum.results, config).dump(2) + "\n");
  write_file_atomic((out / "results.md").string(), results_markdown(sum.results, config));
  sum.written = {(out / "results.json").string(), (out / "results.md").string()};
  if (opt.plot) {
    sum.plot_error = render_plots(sum.results, opt.out_dir, opt.gnuplot);
    if (sum.plot_error.empty()) {
      sum.written.push_back((out / "scaling.png").string());
      sum.written.push_back((out / "scaling.svg").string());
    } else {
      warn("no scaling plot: " + sum.plot_error);
    }
  }
  return sum;
}

EvalSummary reaggregate(const EvalOptions& opt) {
  if (!opt.inputs.empty()) throw Error("--samples re-aggregates stored samples: do not pass --data with it");
  if (!fs::exists(opt.samples_file)) throw Error(opt.samples_file + ": no such file");
  fs::create_directories(opt.out_dir);
  StoreContents c = read_store(opt.samples_file);
  report_store_problems(c, opt.samples_file);
  for (const auto& b : opt.bench_filter) check_bench_name(b);
  auto wanted = [&](const std::string& bench) {
    return opt.bench_filter.empty() || std::find(opt.bench_filter.begin(), opt.bench_filter.end(), bench) != opt.bench_filter.end();
  };
  std::vector<StoredItem> items;
  std::set<std::string> seen;
  for (auto& it : c.items)
    if (wanted(it.bench) && seen.insert(store_id(it.bench, it.key, it.greedy)).second) items.push_back(std::move(it));
  std::vector<StoredSource> sources;
  for (const auto& s : latest_sources(c.sources, nullptr))
    if (wanted(s.bench)) sources.push_back(s);
  if (items.empty()) throw Error(opt.samples_file + ": no stored items to aggregate");
  nlohmann::json config = {{"samples", opt.samples_file}};
  if (!sources.empty()) {
    config["k_max"] = sources.front().k_max;
    config["seed"] = sources.front().seed;
    config["temperature"] = sources.front().temperature;
    config["schedule"] = sources.front().schedule;
    config["template"] = sources.front().tmpl;
  }
  return finish(opt, std::move(items), sources, config);
}

}  // namespace

EvalSummary run_eval(const EvalOptions& opt, const ModelHooks& hooks) {
  if (opt.k_max < 1) throw Error("--k-max must be at least 1");
  if (opt.subsets < 1) throw Error("--subsets must be at least 1");
  if (opt.bootstrap < 0) throw Error("--bootstrap must be 0 or more");
  if (opt.chunk < 1) throw Error("--chunk must be at least 1");
  if (opt.out_dir.empty()) throw Error("no output directory");
  if (!opt.samples_file.empty()) return reaggregate(opt);
  if (opt.inputs.empty()) throw Error("nothing to evaluate: give --bench NAME --data FILE (or --samples FILE)");

  std::vector<LoadResult> loaded;
  std::set<std::pair<std::string, std::string>> names;
  for (const auto& [bench, path] : opt.inputs)
    if (!names.insert({bench, fs::path(path).filename().string()}).second)
      throw Error("two --data files named " + fs::path(path).filename().string() + " for --bench " + bench +
                  ": item keys start with the file name, so rename one");
  for (const auto& [bench, path] : opt.inputs) {
    loaded.push_back(load_bench(bench, path, opt.limit));
    const LoadResult& l = loaded.back();
    for (const auto& e : l.errors) warn("malformed row skipped: " + e);
    if (l.items.empty()) warn(path + ": no items to evaluate");
  }
  fs::create_directories(opt.out_dir);
  const std::string store_path = (fs::path(opt.out_dir) / "samples.jsonl").string();
  StoreContents c = read_store(store_path);
  report_store_problems(c, store_path);
  const Template base = hooks.default_template();
  for (const auto& s : c.sources)
    if (s.k_max != opt.k_max || s.seed != opt.seed || s.temperature != opt.temperature || s.schedule != opt.schedule ||
        (!s.tmpl.empty() && s.tmpl != base.name()))
      throw Error(fmt::format("{} holds samples drawn with --k-max {} --seed {} --temperature {} --schedule {} "
                              "--template {}; rerun with those settings to resume, or choose another --out",
                              store_path, s.k_max, s.seed, s.temperature, s.schedule, s.tmpl));

  StoreWriter writer(store_path, c.complete_bytes);
  std::set<std::string> done;
  for (const auto& it : c.items) done.insert(store_id(it.bench, it.key, it.greedy));
  const auto old_sources = latest_sources(c.sources, nullptr);
  std::set<std::pair<std::string, std::string>> input_sources;
  std::set<std::string> wanted;  // store ids this run evaluates
  std::vector<Job> jobs;
  EvalSummary sum;
  for (const auto& l : loaded) {
    StoredSource src;
    src.bench = l.bench;
    src.file = l.source;
    src.rows = l.rows;
    src.excluded = l.excluded;
    src.malformed = l.malformed;
    src.k_max = opt.k_max;
    src.seed = opt.seed;
    src.temperature = opt.temperature;
    src.schedule = opt.schedule;
    src.tmpl = base.name();
    bool same = false;
    for (const auto& o : old_sources)
      same |= o.bench == src.bench && o.file == src.file && o.rows == src.rows && o.excluded == src.excluded &&
              o.malformed == src.malformed;
    if (!same) writer.append(to_json(src));
    input_sources.insert({l.bench, l.source});
    for (const auto& it : l.items)
      for (bool greedy : {false, true}) {
        const std::string id = store_id(it.bench, it.key, greedy);
        wanted.insert(id);
        if (greedy && !opt.greedy) continue;
        if (done.count(id)) ++sum.resumed;
        else jobs.push_back({&it, greedy});
      }
  }
  if (sum.resumed) fmt::print(stderr, "grm: resuming: {} items already sampled in {}\n", sum.resumed, store_path);
  if (!jobs.empty()) sample_jobs(jobs, opt, hooks, base, writer);

  c = read_store(store_path);  // aggregate what is on disk: the same path for fresh and resumed runs
  std::vector<StoredItem> items;
  std::set<std::string> seen;
  for (auto& it : c.items) {
    const std::string id = store_id(it.bench, it.key, it.greedy);
    if (wanted.count(id) && seen.insert(id).second) items.push_back(std::move(it));
  }
  nlohmann::json inputs = nlohmann::json::array();
  for (const auto& [bench, path] : opt.inputs) inputs.push_back({{"bench", bench}, {"data", path}});
  nlohmann::json config = {{"k_max", opt.k_max},        {"seed", opt.seed},       {"temperature", opt.temperature},
                           {"top_p", opt.top_p},        {"max_tokens", opt.max_tokens}, {"schedule", opt.schedule},
                           {"greedy", opt.greedy},      {"limit", opt.limit},     {"model", opt.model_name},
                           {"template", base.name()},   {"samples", store_path},  {"inputs", inputs}};
  EvalSummary out = finish(opt, std::move(items), latest_sources(c.sources, &input_sources), config);
  out.sampled = jobs.size();
  out.resumed = sum.resumed;
  return out;
}

}  // namespace grm::eval
