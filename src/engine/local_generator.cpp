#include "engine/local_generator.h"

#include <algorithm>
#include <chrono>
#include <functional>
#include <map>

#include <ATen/Parallel.h>
#include <ATen/record_function.h>
#include <torch/torch.h>

#include "core/error.h"
#include "core/rng.h"
#include "engine/sampler.h"
#include "engine/weights.h"
#include "engine/worker_pool.h"

namespace grm::engine {

namespace {

// Shorter common prefixes are computed again: below this the saving is smaller than the cost of one more
// prefill pass.
constexpr int64_t kMinSharedPrompt = 16;
// Draws of one step run on the worker pool from this many logits (rows × vocabulary) on; below it they take a
// few microseconds and stay on the calling thread.
constexpr int64_t kParallelDrawWork = 8192;

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// Which distinct prompts of a batch reuse an earlier one's positions (see run_batch).
struct PromptPlan {
  std::vector<int> parent;      // the earlier prompt whose slot it copies, or -1
  std::vector<int64_t> reuse;   // positions copied (0 without a parent); at most its length - 1, so that the
                                // prompt's last position, whose logits sample its first token, is computed
  std::vector<int> level;       // 0 without a parent, else the parent's + 1
  int levels = 0;               // the largest level
};

PromptPlan plan_prompts(const std::vector<int>& distinct, const std::vector<std::vector<int>>& prompt_tokens,
                        bool share) {
  const size_t P = distinct.size();
  PromptPlan plan{std::vector<int>(P, -1), std::vector<int64_t>(P, 0), std::vector<int>(P, 0), 0};
  for (size_t p = 1; share && p < P; ++p) {
    const auto& ids = prompt_tokens[static_cast<size_t>(distinct[p])];
    const auto cap = static_cast<int64_t>(ids.size()) - 1;
    for (size_t q = 0; q < p; ++q) {
      const auto& other = prompt_tokens[static_cast<size_t>(distinct[q])];
      const auto common = std::mismatch(ids.begin(), ids.end(), other.begin(), other.end()).first - ids.begin();
      const int64_t reuse = std::min<int64_t>(common, cap);
      if (reuse >= kMinSharedPrompt && reuse > plan.reuse[p]) {
        plan.reuse[p] = reuse;
        plan.parent[p] = static_cast<int>(q);
      }
    }
    if (plan.parent[p] >= 0) plan.level[p] = plan.level[static_cast<size_t>(plan.parent[p])] + 1;
    plan.levels = std::max(plan.levels, plan.level[p]);
  }
  return plan;
}

}  // namespace

struct LocalGenerator::Sequence {
  size_t request = 0;
  int index = 0;   // completion index j within its request
  int prompt = 0;  // index into the distinct prompts
  const SamplingParams* params = nullptr;
  int max_new = 0;  // params->max_tokens, or less where the context ends first
  Rng rng{0};
  std::vector<int> tokens;  // generated ids
  std::string text;
  bool done = false;
  std::string finish;
  int next_token = -1;  // sampled, not yet fed to the model
};

LocalGenerator::LocalGenerator(std::shared_ptr<Transformer> model, std::shared_ptr<const Tokenizer> tokenizer,
                               EngineOptions options)
    : model_(std::move(model)), tokenizer_(std::move(tokenizer)), options_(options) {
  if (!model_ || !tokenizer_) throw Error("LocalGenerator needs a model and a tokenizer");
  if (options_.max_batch < 1) throw Error("max_batch must be at least 1");
  if (options_.kv_dtype) model_->set_kv_dtype(*options_.kv_dtype);
  if (options_.threads > 0) {
    at::set_num_threads(options_.threads);
    set_worker_threads(options_.threads);
  }
  const auto& cfg = model_->config();
  eos_ids_ = cfg.eos_token_ids;
  if (eos_ids_.empty())
    if (auto e = tokenizer_->eos_id()) eos_ids_.push_back(*e);
  // Llama-2 / Mistral ("<s>"), Gemma ("<bos>") and Llama-3 ("<|begin_of_text|>") expect a BOS token;
  // Qwen2 names "<|endoftext|>" as bos_token_id but never prepends it.
  bool wants_bos = false;
  if (cfg.bos_token_id && *cfg.bos_token_id >= 0 && *cfg.bos_token_id < tokenizer_->vocab_size()) {
    const std::string bos = tokenizer_->token_bytes(static_cast<int>(*cfg.bos_token_id));
    wants_bos = bos == "<s>" || bos == "<bos>" || bos == "<|begin_of_text|>";
  }
  add_bos_ = options_.add_bos.value_or(wants_bos);
  if (tokenizer_->vocab_size() > cfg.vocab_size)
    throw Error("tokenizer has " + std::to_string(tokenizer_->vocab_size()) + " tokens but the model's vocab_size is " +
                std::to_string(cfg.vocab_size));
}

std::unique_ptr<LocalGenerator> LocalGenerator::open(const std::string& dir, EngineOptions options) {
  // This model only runs inference: packed weights where the CPU has the kernel (which then hold the only copy;
  // each block is packed as soon as it is loaded), else the storage OpenBLAS multiplies fastest.
  const bool pack = options.pack_weights && options.dtype == c10::kFloat && packed_kernel_available();
  auto model = pack ? load_model(dir, options.dtype, [](Transformer& m, int64_t layer) { m.pack_and_release(layer); })
                    : load_model(dir, options.dtype);
  model->eval();
  if (!pack) model->store_linear_weights_transposed();
  std::shared_ptr<const Tokenizer> tok = Tokenizer::load(dir);
  return std::make_unique<LocalGenerator>(std::move(model), std::move(tok), options);
}

std::vector<int> LocalGenerator::encode_prompt(const std::string& prompt) const {
  std::vector<int> ids;
  if (add_bos_ && model_->config().bos_token_id) ids.push_back(static_cast<int>(*model_->config().bos_token_id));
  const auto body = tokenizer_->encode(prompt);
  ids.insert(ids.end(), body.begin(), body.end());
  if (ids.empty()) throw Error("empty prompt");
  return ids;
}

std::vector<std::vector<Completion>> LocalGenerator::generate(const std::vector<GenerationRequest>& requests) {
  // Distinct prompts, tokenized once.
  std::map<std::string, int> prompt_index;
  std::vector<std::vector<int>> prompt_tokens;
  std::vector<Sequence> seqs;
  const int64_t context = model_->config().max_position_embeddings;
  std::vector<std::string> errors(requests.size());  // requests that cannot run
  for (size_t r = 0; r < requests.size(); ++r) {
    const auto& req = requests[r];
    if (req.n < 0) throw Error("request " + std::to_string(r) + ": n must be >= 0");
    if (req.params.max_tokens < 1) throw Error("request " + std::to_string(r) + ": max_tokens must be >= 1");
    auto [it, inserted] = prompt_index.emplace(req.prompt, static_cast<int>(prompt_tokens.size()));
    if (inserted) prompt_tokens.push_back(encode_prompt(req.prompt));
    const auto plen = static_cast<int64_t>(prompt_tokens[static_cast<size_t>(it->second)].size());
    // A prompt that fills the context cannot run; otherwise generation stops where the context ends.
    if (plen >= context) {
      errors[r] = "prompt of " + std::to_string(plen) + " tokens does not fit the model's context of " +
                  std::to_string(context) + " tokens";
      continue;
    }
    for (int j = 0; j < req.n; ++j) {
      Sequence s;
      s.request = r;
      s.index = j;
      s.prompt = it->second;
      s.params = &req.params;
      s.max_new = static_cast<int>(std::min<int64_t>(req.params.max_tokens, context - plen));
      s.rng = Rng(derive_seed(req.params.seed, static_cast<uint64_t>(req.first_index + j)));
      seqs.push_back(std::move(s));
    }
  }
  // Sequences of the same prompt stay adjacent, so a batch holds few distinct prompts.
  std::vector<Sequence*> order;
  for (auto& s : seqs) order.push_back(&s);
  std::stable_sort(order.begin(), order.end(), [](const Sequence* a, const Sequence* b) { return a->prompt < b->prompt; });
  for (size_t start = 0; start < order.size(); start += static_cast<size_t>(options_.max_batch)) {
    const size_t end = std::min(order.size(), start + static_cast<size_t>(options_.max_batch));
    std::vector<Sequence*> batch(order.begin() + static_cast<long>(start), order.begin() + static_cast<long>(end));
    run_batch(batch, prompt_tokens);
  }
  std::vector<std::vector<Completion>> out(requests.size());
  for (size_t r = 0; r < requests.size(); ++r) {
    out[r].resize(static_cast<size_t>(requests[r].n));
    if (errors[r].empty()) continue;
    for (auto& c : out[r]) {
      c.error = errors[r];
      c.finish_reason = "error";
    }
  }
  for (const auto& s : seqs) {
    Completion& c = out[s.request][static_cast<size_t>(s.index)];
    c.text = s.text;
    c.prompt_tokens = static_cast<int>(prompt_tokens[static_cast<size_t>(s.prompt)].size());
    c.completion_tokens = static_cast<int>(s.tokens.size());
    c.finish_reason = s.finish;
  }
  return out;
}

void LocalGenerator::run_batch(std::vector<Sequence*>& batch, const std::vector<std::vector<int>>& prompt_tokens) {
  c10::InferenceMode guard;
  const auto B = static_cast<int64_t>(batch.size());
  // Distinct prompts of this batch, and the slot that prefills each.
  std::vector<int> distinct;            // prompt ids
  std::vector<int> first_slot;          // slot that holds the prefilled prompt
  std::vector<std::vector<int>> forks;  // other slots of the same prompt
  std::vector<int> row_of_slot(static_cast<size_t>(B));
  int64_t max_len = 0, max_new = 0;
  for (int64_t b = 0; b < B; ++b) {
    const Sequence* s = batch[static_cast<size_t>(b)];
    if (distinct.empty() || distinct.back() != s->prompt) {
      distinct.push_back(s->prompt);
      first_slot.push_back(static_cast<int>(b));
      forks.emplace_back();
      max_len = std::max<int64_t>(max_len, static_cast<int64_t>(prompt_tokens[static_cast<size_t>(s->prompt)].size()));
    } else {
      forks.back().push_back(static_cast<int>(b));
    }
    row_of_slot[static_cast<size_t>(b)] = static_cast<int>(distinct.size() - 1);
    max_new = std::max<int64_t>(max_new, s->max_new);
  }
  const auto P = static_cast<int64_t>(distinct.size());
  KVCache cache = model_->make_cache(B, max_len + max_new);

  // Prefill every distinct prompt once, then fork its slot. A prompt that begins with at least
  // kMinSharedPrompt tokens of an earlier one (the permutations of one record share the template's head and
  // the conversation; records share the head) copies those positions from that one's slot and computes only
  // the rest, after it: prompts in levels, each level one prefill (level 0) or extend call.
  auto t0 = std::chrono::steady_clock::now();
  const PromptPlan plan = plan_prompts(distinct, prompt_tokens, options_.share_prompt_prefixes);
  at::Tensor logits;
  for (int level = 0; level <= plan.levels; ++level) {
    std::vector<int64_t> rows;  // distinct prompts of this level
    int64_t width = 0;
    for (int64_t p = 0; p < P; ++p)
      if (plan.level[static_cast<size_t>(p)] == level) {
        rows.push_back(p);
        const auto len = static_cast<int64_t>(prompt_tokens[static_cast<size_t>(distinct[static_cast<size_t>(p)])].size());
        width = std::max(width, len - plan.reuse[static_cast<size_t>(p)]);
      }
    const auto n = static_cast<int64_t>(rows.size());
    at::Tensor tokens = at::zeros({n, width}, at::kLong);
    std::vector<int64_t> lengths(static_cast<size_t>(n));
    std::vector<int> slots(static_cast<size_t>(n));
    auto acc = tokens.accessor<int64_t, 2>();
    for (int64_t i = 0; i < n; ++i) {
      const auto p = static_cast<size_t>(rows[static_cast<size_t>(i)]);
      const auto& ids = prompt_tokens[static_cast<size_t>(distinct[p])];
      const int64_t from = plan.reuse[p];
      lengths[static_cast<size_t>(i)] = static_cast<int64_t>(ids.size()) - from;
      for (int64_t t = from; t < static_cast<int64_t>(ids.size()); ++t) acc[i][t - from] = ids[static_cast<size_t>(t)];
      slots[static_cast<size_t>(i)] = first_slot[p];
      if (level > 0) cache.copy_slot(cache, first_slot[static_cast<size_t>(plan.parent[p])], first_slot[p], from);
      stats_.prefill_tokens += lengths[static_cast<size_t>(i)];
    }
    const at::Tensor out = level == 0 ? model_->prefill(tokens, lengths, cache, slots)
                                      : model_->extend(tokens, lengths, cache, slots);
    if (!logits.defined()) logits = at::empty({P, out.size(1)}, out.options());
    logits.index_copy_(0, at::tensor(rows, at::kLong), out);
  }
  for (int64_t p = 0; p < P; ++p)
    if (!forks[static_cast<size_t>(p)].empty()) cache.fork(first_slot[static_cast<size_t>(p)], forks[static_cast<size_t>(p)]);
  stats_.prefill_seconds += seconds_since(t0);
  stats_.sequences += B;
  for (const Sequence* s : batch)
    stats_.prompt_tokens_naive += static_cast<int64_t>(prompt_tokens[static_cast<size_t>(s->prompt)].size());

  const int64_t V = logits.size(1);
  // Models often pad vocab_size past the tokenizer; ids without a token are never sampled.
  const int64_t V_sample = std::min<int64_t>(V, tokenizer_->vocab_size());
  const auto is_eos = [&](int t) { return std::find(eos_ids_.begin(), eos_ids_.end(), t) != eos_ids_.end(); };
  // Records a sampled token; marks the sequence done on eos / stop / length.
  auto record = [&](Sequence& s, int t) {
    if (!s.params->ignore_eos && is_eos(t)) {
      s.done = true;
      s.finish = "stop";
      return;
    }
    s.tokens.push_back(t);
    const size_t before = s.text.size();
    s.text += tokenizer_->token_bytes(t);
    for (const auto& stop : s.params->stop) {
      if (stop.empty()) continue;
      const size_t from = before >= stop.size() ? before - stop.size() + 1 : 0;
      const size_t at = s.text.find(stop, from);
      if (at != std::string::npos) {
        s.text.resize(at);
        s.done = true;
        s.finish = "stop";
        return;
      }
    }
    if (static_cast<int>(s.tokens.size()) >= s.max_new) {
      s.done = true;
      s.finish = "length";
      return;
    }
    s.next_token = t;
  };
  // Draws a token for each live sequence from its logits row, then records them in order. Each sequence has its
  // own generator, so the draws run on the worker pool when there are enough of them and do not depend on the
  // thread count. Bundled model, k = 32, profiled: 26-27 ms of drawing per request against 34-51 ms on one core.
  std::vector<int> drawn;
  auto sample_rows = [&](int64_t n, const std::function<Sequence&(int64_t)>& seq,
                         const std::function<const float*(int64_t)>& row) {
    drawn.assign(static_cast<size_t>(n), -1);
    auto draw = [&](int64_t i) {
      Sequence& s = seq(i);
      if (!s.done) drawn[static_cast<size_t>(i)] = sample_token(row(i), V_sample, *s.params, s.rng);
    };
    if (n >= 2 && n * V_sample >= kParallelDrawWork) {
      parallel_items(n, draw);
    } else {
      for (int64_t i = 0; i < n; ++i) draw(i);
    }
    for (int64_t i = 0; i < n; ++i)
      if (Sequence& s = seq(i); !s.done) record(s, drawn[static_cast<size_t>(i)]);
  };
  sample_rows(
      B, [&](int64_t b) -> Sequence& { return *batch[static_cast<size_t>(b)]; },
      [&](int64_t b) { return logits.data_ptr<float>() + row_of_slot[static_cast<size_t>(b)] * V; });

  // Decode. While most slots are live, all slots step together (finished ones are fed a dummy token and
  // ignored: reading the cache in place beats gathering it); below half, only the live slots step.
  t0 = std::chrono::steady_clock::now();
  std::vector<int> all_slots(static_cast<size_t>(B));
  for (int64_t b = 0; b < B; ++b) all_slots[static_cast<size_t>(b)] = static_cast<int>(b);
  for (;;) {
    std::vector<int> live;
    for (int64_t b = 0; b < B; ++b)
      if (!batch[static_cast<size_t>(b)]->done) live.push_back(static_cast<int>(b));
    if (live.empty()) break;
    const bool dense = live.size() * 2 >= static_cast<size_t>(B);
    const std::vector<int>& slots = dense ? all_slots : live;
    at::Tensor step_tokens = at::zeros({static_cast<int64_t>(slots.size())}, at::kLong);
    auto st = step_tokens.accessor<int64_t, 1>();
    for (size_t i = 0; i < slots.size(); ++i) {
      const Sequence* s = batch[static_cast<size_t>(slots[i])];
      st[static_cast<int64_t>(i)] = s->done ? 0 : s->next_token;
    }
    at::Tensor out = model_->decode(step_tokens, cache, slots).contiguous();
    ++stats_.decode_steps;
    stats_.decode_tokens += static_cast<int64_t>(live.size());
    RECORD_FUNCTION("grm::sample", std::vector<c10::IValue>());
    const float* rows = out.data_ptr<float>();
    sample_rows(
        static_cast<int64_t>(slots.size()),
        [&](int64_t i) -> Sequence& { return *batch[static_cast<size_t>(slots[static_cast<size_t>(i)])]; },
        [&](int64_t i) { return rows + i * V; });
  }
  stats_.decode_seconds += seconds_since(t0);
}

}  // namespace grm::engine
