#include "eval/store.h"

#include <filesystem>
#include <sstream>

#include "core/error.h"
#include "core/fs.h"
#include "core/jsonl.h"

namespace grm::eval {

namespace fs = std::filesystem;
using Json = nlohmann::json;

StoredItem make_stored(const EvalItem& item, const std::vector<Sample>& samples, ScoreRange range, bool greedy) {
  StoredItem s;
  s.bench = item.bench;
  s.key = item.key;
  s.greedy = greedy;
  s.n = static_cast<int>(item.record.responses.size());
  s.best = item.best;
  s.label = item.label;
  s.strict = item.strict;
  s.groups = item.groups;
  s.range = range;
  for (const auto& x : samples) {
    StoredSample ss;
    ss.order = x.order;
    ss.valid = x.judgment.valid;
    if (ss.valid) ss.scores = x.judgment.scores;
    else ss.error = x.judgment.error;
    ss.meta = x.meta;
    s.samples.push_back(std::move(ss));
  }
  return s;
}

Json to_json(const StoredItem& s) {
  Json j = {{"bench", s.bench}, {"key", s.key}};
  if (s.greedy) j["greedy"] = true;
  j["n"] = s.n;
  if (s.n >= 2) j["best"] = s.best;
  else j["label"] = s.label;
  if (s.strict) j["strict"] = true;
  j["groups"] = s.groups;
  j["range"] = {s.range.lo, s.range.hi};
  Json samples = Json::array();
  for (const auto& x : s.samples) {
    Json o = {{"order", x.order}, {"scores", x.scores}, {"valid", x.valid}};
    if (!x.valid && !x.error.empty()) o["error"] = x.error;
    if (x.meta) o["meta"] = *x.meta;
    samples.push_back(std::move(o));
  }
  j["samples"] = std::move(samples);
  return j;
}

Json to_json(const StoredSource& s) {
  return {{"source",
           {{"bench", s.bench}, {"file", s.file}, {"rows", s.rows}, {"excluded", s.excluded}, {"malformed", s.malformed},
            {"k_max", s.k_max}, {"seed", s.seed}, {"temperature", s.temperature}, {"schedule", s.schedule},
            {"template", s.tmpl}}}};
}

StoredItem stored_item_from_json(const Json& j) {
  StoredItem s;
  s.bench = j.at("bench").get<std::string>();
  check_bench_name(s.bench);
  s.key = j.at("key").get<std::string>();
  s.greedy = j.value("greedy", false);
  s.n = j.at("n").get<int>();
  if (s.n < 1) throw Error("item '" + s.key + "': n must be at least 1");
  if (s.n >= 2) {
    s.best = j.at("best").get<int>();
    if (s.best < 0 || s.best >= s.n) throw Error("item '" + s.key + "': best out of range");
  } else {
    s.label = j.at("label").get<int>();
    if (s.label != 0 && s.label != 1) throw Error("item '" + s.key + "': label must be 0 or 1");
  }
  s.strict = j.value("strict", false);
  s.groups = j.value("groups", std::map<std::string, std::string>{});
  const auto range = j.at("range").get<std::vector<int>>();
  if (range.size() != 2 || range[0] > range[1]) throw Error("item '" + s.key + "': range must be [lo, hi]");
  s.range = {range[0], range[1]};
  for (const auto& o : j.at("samples")) {
    StoredSample x;
    x.order = o.value("order", std::vector<int>{});
    x.valid = o.at("valid").get<bool>();
    x.scores = o.value("scores", std::vector<int>{});
    x.error = o.value("error", std::string{});
    if (o.contains("meta") && !o["meta"].is_null()) x.meta = o["meta"].get<double>();
    if (x.valid) {
      if (x.scores.size() != static_cast<size_t>(s.n))
        throw Error("item '" + s.key + "': a valid sample needs " + std::to_string(s.n) + " scores");
      for (int v : x.scores)
        if (!s.range.contains(v)) throw Error("item '" + s.key + "': score " + std::to_string(v) + " outside its range");
    }
    s.samples.push_back(std::move(x));
  }
  return s;
}

StoredSource stored_source_from_json(const Json& j) {
  const Json& o = j.at("source");
  StoredSource s;
  s.bench = o.at("bench").get<std::string>();
  check_bench_name(s.bench);
  s.file = o.value("file", std::string{});
  s.rows = o.value("rows", size_t{0});
  s.excluded = o.value("excluded", size_t{0});
  s.malformed = o.value("malformed", size_t{0});
  s.k_max = o.value("k_max", 0);
  s.seed = o.value("seed", uint64_t{0});
  s.temperature = o.value("temperature", 0.0);
  s.schedule = o.value("schedule", std::string{});
  s.tmpl = o.value("template", std::string{});
  return s;
}

StoreContents read_store(const std::string& path) {
  StoreContents c;
  std::error_code ec;
  if (!fs::exists(path, ec)) return c;
  const std::string text = read_file(path);
  const size_t last_nl = text.rfind('\n');
  c.complete_bytes = last_nl == std::string::npos ? 0 : last_nl + 1;
  c.truncated_tail = c.complete_bytes < text.size();
  size_t start = 0, line_no = 0;
  while (start < c.complete_bytes) {
    const size_t end = text.find('\n', start);
    const std::string line = text.substr(start, end - start);
    start = end + 1;
    ++line_no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(line_no) + ": ";
    Json j;
    std::string err;
    if (!parse_json_line(line, j, err)) {
      c.errors.push_back(where + err);
      continue;
    }
    try {
      if (j.is_object() && j.contains("source")) c.sources.push_back(stored_source_from_json(j));
      else if (j.is_object()) c.items.push_back(stored_item_from_json(j));
      else throw Error("not a JSON object");
    } catch (const Error& e) {
      c.errors.push_back(where + e.what());
    } catch (const Json::exception& e) {
      c.errors.push_back(where + e.what());
    }
  }
  return c;
}

std::string store_id(const std::string& bench, const std::string& key, bool greedy) {
  return bench + '\x1f' + key + (greedy ? "\x1fgreedy" : "");
}

StoreWriter::StoreWriter(const std::string& path, size_t complete_bytes) : path_(path) {
  std::error_code ec;
  if (fs::exists(path, ec) && fs::file_size(path, ec) != complete_bytes) {
    fs::resize_file(path, complete_bytes, ec);
    if (ec) throw Error(path + ": cannot cut off the interrupted last line: " + ec.message());
  }
  out_.open(path, std::ios::binary | std::ios::app);
  if (!out_) throw Error(path + ": cannot open for writing");
}

void StoreWriter::append(const Json& line) {
  out_ << dump_json(line) << '\n';
  out_.flush();
  if (!out_) throw Error(path_ + ": write error");
}

}  // namespace grm::eval
