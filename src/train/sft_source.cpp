// Training data from JSONL files: synthetic suite records (grm synth) or plain {"prompt", "target"} pairs.
#include <fstream>
#include <map>
#include <numeric>
#include <optional>

#include "core/error.h"
#include "core/jsonl.h"
#include "core/rng.h"
#include "core/template.h"
#include "synth/synth.h"
#include "train/sft_data.h"

namespace grm::train {

namespace {

constexpr uint64_t kEpochSalt = 0x5EED0E9Cull;  // stream of the per-epoch record order
constexpr uint64_t kOrderSalt = 0x0DE5A11Full;  // stream of the per-example response order

bool is_pair(const nlohmann::json& j) {
  return j.is_object() && j.contains("prompt") && j["prompt"].is_string() && j.contains("target") &&
         j["target"].is_string();
}

// Either all plain pairs or all synthetic records, in file order.
struct Records {
  std::vector<SftExample> pairs;
  std::vector<synth::SynthRecord> synth;
  size_t size() const { return pairs.size() + synth.size(); }
};

Records read_records(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open for reading");
  Records r;
  for_each_jsonl(in, path, [&](size_t, const nlohmann::json& j) {
    if (is_pair(j)) {
      if (!r.synth.empty()) throw Error("mixes prompt/target records with synthetic suite records");
      r.pairs.push_back({j["prompt"].get<std::string>(), j["target"].get<std::string>()});
    } else {
      if (!r.pairs.empty()) throw Error("mixes prompt/target records with synthetic suite records");
      r.synth.push_back(synth::synth_from_json(j));
    }
  });
  if (r.size() == 0) throw Error(path + ": no training records");
  return r;
}

class TemplateCache {
 public:
  const Template& get(const std::string& name) {
    auto it = cache_.find(name);
    if (it == cache_.end()) it = cache_.emplace(name, Template::builtin(name)).first;
    return it->second;
  }

 private:
  std::map<std::string, Template> cache_;
};

// The synthetic record shown in `order`: rendered prompt and gold target.
SftExample render_synth(const synth::SynthRecord& rec, const Order& order, TemplateCache& templates) {
  std::vector<std::string> shown;
  for (int i : order) shown.push_back(rec.responses[static_cast<size_t>(i)]);
  return {templates.get(rec.tmpl).render(Conversation::from_query(rec.query), shown), synth::gold_target(rec, order)};
}

Order shuffled_order(int n, uint64_t seed) {
  Order order(static_cast<size_t>(n));
  std::iota(order.begin(), order.end(), 0);
  Rng(seed).shuffle(order);
  return order;
}

// Epoch e visits every record once, in an order shuffled by (seed, e). Not thread-safe (caches the epoch).
class JsonlSource : public ExampleSource {
 public:
  JsonlSource(Records records, uint64_t seed) : r_(std::move(records)), seed_(seed) {}

  size_t size() const override { return r_.size(); }

  SftExample example(uint64_t index) const override {
    const uint64_t n = r_.size(), epoch = index / n;
    if (!epoch_ || *epoch_ != epoch) {
      perm_.resize(n);
      std::iota(perm_.begin(), perm_.end(), size_t{0});
      Rng(derive_seed(seed_ ^ kEpochSalt, epoch)).shuffle(perm_);
      epoch_ = epoch;
    }
    const size_t rec = perm_[index % n];
    if (!r_.pairs.empty()) return r_.pairs[rec];
    const auto& s = r_.synth[rec];
    return render_synth(s, shuffled_order(s.n(), derive_seed(seed_ ^ kOrderSalt, index)), templates_);
  }

 private:
  Records r_;
  uint64_t seed_;
  mutable std::optional<uint64_t> epoch_;
  mutable std::vector<size_t> perm_;
  mutable TemplateCache templates_;
};

}  // namespace

std::shared_ptr<ExampleSource> load_sft_source(const std::string& path, uint64_t seed) {
  return std::make_shared<JsonlSource>(read_records(path), seed);
}

std::vector<std::string> tokenizer_corpus(const std::string& path, uint64_t seed) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open for reading");
  std::string first;
  while (std::getline(in, first) && first.find_first_not_of(" \t\r") == std::string::npos) {
  }
  nlohmann::json j;
  std::string why;
  const bool jsonl = parse_json_line(first, j, why) && j.is_object();
  std::vector<std::string> texts;
  if (jsonl && (is_pair(j) || j.contains("responses"))) {
    const Records r = read_records(path);
    for (const auto& p : r.pairs) {
      texts.push_back(p.prompt);
      texts.push_back(p.target);
    }
    TemplateCache templates;
    for (size_t i = 0; i < r.synth.size(); ++i) {
      const auto& s = r.synth[i];
      // Two response orders: the tokenizer sees the response blocks in more than one position.
      for (const Order& order : {shuffled_order(s.n(), derive_seed(seed, 2 * i)),
                                 shuffled_order(s.n(), derive_seed(seed, 2 * i + 1))}) {
        SftExample ex = render_synth(s, order, templates);
        texts.push_back(std::move(ex.prompt));
        texts.push_back(std::move(ex.target));
      }
    }
    return texts;
  }
  in.clear();
  in.seekg(0);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) texts.push_back(line + "\n");
  return texts;
}

}  // namespace grm::train
