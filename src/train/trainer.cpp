#include "train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include <torch/torch.h>

#include "core/error.h"
#include "engine/cpu_dtype.h"
#include "engine/safetensors.h"

namespace grm::train {

namespace {

constexpr const char* kStateFormat = "grm-trainer-state-v1";

bool is_matrix(const at::Tensor& p) { return p.dim() >= 2; }

double seconds(std::chrono::steady_clock::time_point a, std::chrono::steady_clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

}  // namespace

Precision parse_precision(const std::string& name) {
  if (name == "auto") return engine::cpu_has_native_bf16() ? Precision::Mixed : Precision::Fp32;
  if (name == "fp32" || name == "f32" || name == "float32") return Precision::Fp32;
  if (name == "mixed" || name == "bf16" || name == "bfloat16") return Precision::Mixed;
  throw Error("unknown precision '" + name + "' (expected auto, fp32 or mixed)");
}

std::string to_string(Precision p) { return p == Precision::Fp32 ? "fp32" : "mixed"; }

double lr_at(const TrainOptions& o, int64_t step) {
  if (o.warmup > 0 && step < o.warmup) return o.lr * static_cast<double>(step + 1) / static_cast<double>(o.warmup);
  const double span = static_cast<double>(std::max<int64_t>(1, o.steps - o.warmup));
  const double progress = std::clamp(static_cast<double>(step - o.warmup) / span, 0.0, 1.0);
  const double lo = o.lr * o.min_lr_ratio;
  return lo + (o.lr - lo) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

Trainer::Trainer(std::shared_ptr<engine::Transformer> model, std::shared_ptr<const engine::Tokenizer> tokenizer,
                 std::shared_ptr<const ExampleSource> data, TrainOptions options)
    : master_(std::move(model)), tok_(std::move(tokenizer)), data_(std::move(data)), opt_(options) {
  if (!master_ || !tok_ || !data_) throw Error("Trainer needs a model, a tokenizer and data");
  if (master_->dtype() != torch::kFloat) throw Error("Trainer: the master model must be float32");
  if (opt_.batch < 1 || opt_.steps < 1 || opt_.seq_len < 2) throw Error("Trainer: batch, steps and seq_len must be positive");
  const auto eos = tok_->eos_id();
  if (!eos) throw Error("Trainer: the tokenizer has no eos token");
  eos_ = *eos;
  if (tok_->vocab_size() > master_->config().vocab_size)
    throw Error("Trainer: tokenizer has " + std::to_string(tok_->vocab_size()) + " tokens, model vocab_size is " +
                std::to_string(master_->config().vocab_size));

  if (opt_.precision == Precision::Mixed) {
    compute_ = std::make_shared<engine::Transformer>(master_->config(), torch::kBFloat16);
  } else {
    compute_ = master_;
  }
  std::vector<at::Tensor> decay, no_decay;
  const auto mw = master_->named_weights();
  const auto cw = compute_->named_weights();
  for (size_t i = 0; i < mw.size(); ++i) {
    names_.push_back(mw[i].first);
    master_params_.push_back(mw[i].second);
    compute_params_.push_back(cw[i].second);
    (is_matrix(mw[i].second) ? decay : no_decay).push_back(mw[i].second);
  }
  auto base = torch::optim::AdamWOptions(opt_.lr).betas({opt_.beta1, opt_.beta2}).eps(opt_.eps);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(decay, std::make_unique<torch::optim::AdamWOptions>(
                                 torch::optim::AdamWOptions(base).weight_decay(opt_.weight_decay)));
  groups.emplace_back(no_decay,
                      std::make_unique<torch::optim::AdamWOptions>(torch::optim::AdamWOptions(base).weight_decay(0.0)));
  adam_ = std::make_unique<torch::optim::AdamW>(std::move(groups), base);
}

Trainer::~Trainer() = default;

void Trainer::set_options(const TrainOptions& o) {
  if (o.precision != opt_.precision) throw Error("Trainer: precision cannot change on an existing trainer");
  opt_ = o;
  for (size_t g = 0; g < adam_->param_groups().size(); ++g) {
    auto& go = static_cast<torch::optim::AdamWOptions&>(adam_->param_groups()[g].options());
    go.betas({o.beta1, o.beta2}).eps(o.eps).weight_decay(g == 0 ? o.weight_decay : 0.0);
  }
}

std::vector<TokenizedExample> Trainer::next_examples(int64_t* skipped) {
  std::vector<TokenizedExample> out;
  int64_t skipped_in_a_row = 0;
  const auto limit = static_cast<int64_t>(data_->size()) + 1000;
  while (static_cast<int64_t>(out.size()) < opt_.batch) {
    TokenizedExample ex = tokenize_example(*tok_, data_->example(cursor_++), eos_);
    if (static_cast<int64_t>(ex.tokens.size()) - 1 > opt_.seq_len) {
      ++*skipped;
      if (++skipped_in_a_row > limit)
        throw Error("every training example is longer than --seq-len " + std::to_string(opt_.seq_len) + " tokens");
      continue;
    }
    skipped_in_a_row = 0;
    out.push_back(std::move(ex));
  }
  return out;
}

StepStats Trainer::step() {
  const auto t0 = std::chrono::steady_clock::now();
  StepStats st;
  std::vector<TokenizedExample> examples = next_examples(&st.skipped);
  // Similar lengths share a micro-batch (less padding); the loss is normalized by the whole batch's targets.
  std::stable_sort(examples.begin(), examples.end(),
                   [](const auto& a, const auto& b) { return a.tokens.size() < b.tokens.size(); });
  int64_t targets = 0;
  for (const auto& e : examples) targets += static_cast<int64_t>(e.tokens.size()) - e.prompt_len;

  if (compute_ != master_) {
    torch::NoGradGuard no_grad;
    for (size_t i = 0; i < master_params_.size(); ++i) compute_params_[i].copy_(master_params_[i]);
  }
  for (auto& p : compute_params_) p.mutable_grad().reset();
  for (auto& p : master_params_) p.mutable_grad().reset();
  compute_->train();

  const size_t micro = opt_.micro_batch > 0 ? static_cast<size_t>(opt_.micro_batch) : examples.size();
  for (size_t begin = 0; begin < examples.size(); begin += micro) {
    const std::vector<TokenizedExample> part(examples.begin() + static_cast<std::ptrdiff_t>(begin),
                                             examples.begin() + static_cast<std::ptrdiff_t>(std::min(begin + micro, examples.size())));
    const Batch batch = make_batch(part);
    st.real_tokens += batch.real_tokens;
    st.target_tokens += batch.target_tokens;
    const auto t1 = std::chrono::steady_clock::now();
    const at::Tensor loss = masked_lm_loss(compute_->forward(batch.inputs), batch.labels, targets);
    st.loss += loss.item<double>();
    const auto t2 = std::chrono::steady_clock::now();
    loss.backward();
    if (compute_ != master_) {  // accumulate in float32
      torch::NoGradGuard no_grad;
      for (size_t i = 0; i < master_params_.size(); ++i) {
        const at::Tensor& g = compute_params_[i].grad();
        if (!g.defined()) continue;
        at::Tensor& mg = master_params_[i].mutable_grad();
        if (mg.defined()) mg.add_(g);
        else mg = g.to(torch::kFloat);
        compute_params_[i].mutable_grad().reset();
      }
    }
    const auto t3 = std::chrono::steady_clock::now();
    st.forward_seconds += seconds(t1, t2);
    st.backward_seconds += seconds(t2, t3);
  }
  if (!std::isfinite(st.loss)) throw Error("training diverged: loss is " + std::to_string(st.loss) + " at step " +
                                           std::to_string(step_ + 1) + " (try a lower --lr)");
  const auto t4 = std::chrono::steady_clock::now();
  st.grad_norm = torch::nn::utils::clip_grad_norm_(master_params_, opt_.clip > 0 ? opt_.clip : 1e30);
  st.lr = lr_at(opt_, step_);
  for (auto& g : adam_->param_groups()) static_cast<torch::optim::AdamWOptions&>(g.options()).lr(st.lr);
  adam_->step();
  for (auto& p : master_params_) p.mutable_grad().reset();
  st.step = ++step_;
  const auto t5 = std::chrono::steady_clock::now();
  st.seconds = seconds(t0, t5);
  st.update_seconds = seconds(t4, t5);
  return st;
}

void Trainer::save_state(const std::string& path) const {
  std::vector<std::pair<std::string, torch::Tensor>> tensors;
  for (size_t i = 0; i < names_.size(); ++i) tensors.emplace_back("master." + names_[i], master_params_[i]);
  for (size_t i = 0; i < names_.size(); ++i) {
    const auto it = adam_->state().find(c10::guts::to_string(master_params_[i].unsafeGetTensorImpl()));
    if (it == adam_->state().end()) continue;
    const auto& s = static_cast<const torch::optim::AdamWParamState&>(*it->second);
    tensors.emplace_back("exp_avg." + names_[i], s.exp_avg());
    tensors.emplace_back("exp_avg_sq." + names_[i], s.exp_avg_sq());
    tensors.emplace_back("adam_step." + names_[i], torch::tensor({s.step()}, torch::kLong));
  }
  const nlohmann::json options = {{"steps", opt_.steps},   {"lr", opt_.lr},       {"min_lr_ratio", opt_.min_lr_ratio},
                                  {"warmup", opt_.warmup}, {"batch", opt_.batch}, {"seq_len", opt_.seq_len},
                                  {"micro_batch", opt_.micro_batch},
                                  {"weight_decay", opt_.weight_decay},            {"clip", opt_.clip},
                                  {"seed", opt_.seed},     {"precision", to_string(opt_.precision)}};
  engine::save_safetensors(path, tensors,
                           {{"format", kStateFormat},
                            {"step", std::to_string(step_)},
                            {"cursor", std::to_string(cursor_)},
                            {"config", master_->config().to_json().dump()},
                            {"options", options.dump()}});
}

namespace {

const std::string& meta(const engine::SafetensorsFile& f, const std::string& key) {
  const auto it = f.metadata().find(key);
  if (it == f.metadata().end()) throw Error(f.path() + ": not a grm trainer state (no '" + key + "' metadata)");
  return it->second;
}

engine::SafetensorsFile open_state(const std::string& path) {
  auto f = engine::SafetensorsFile::open(path);
  if (meta(f, "format") != kStateFormat)
    throw Error(path + ": unsupported trainer state format '" + meta(f, "format") + "'");
  return f;
}

}  // namespace

nlohmann::json Trainer::state_config(const std::string& path) {
  return nlohmann::json::parse(meta(open_state(path), "config"));
}

void Trainer::load_state(const std::string& path) {
  const auto f = open_state(path);
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < names_.size(); ++i) {
    const std::string key = "master." + names_[i];
    if (!f.contains(key)) throw Error(path + ": missing tensor " + key + " (state of a different model?)");
    const at::Tensor t = f.get(key);
    if (t.sizes() != master_params_[i].sizes()) throw Error(path + ": tensor " + key + " has the wrong shape");
    master_params_[i].copy_(t);
  }
  adam_->state().clear();
  for (size_t i = 0; i < names_.size(); ++i) {
    if (!f.contains("exp_avg." + names_[i])) continue;
    auto s = std::make_unique<torch::optim::AdamWParamState>();
    s->exp_avg(f.get("exp_avg." + names_[i]).to(torch::kFloat).contiguous());
    s->exp_avg_sq(f.get("exp_avg_sq." + names_[i]).to(torch::kFloat).contiguous());
    s->step(f.get("adam_step." + names_[i]).item<int64_t>());
    if (s->exp_avg().sizes() != master_params_[i].sizes()) throw Error(path + ": optimizer state shape mismatch");
    adam_->state()[c10::guts::to_string(master_params_[i].unsafeGetTensorImpl())] = std::move(s);
  }
  step_ = std::stoll(meta(f, "step"));
  cursor_ = std::stoull(meta(f, "cursor"));
}

}  // namespace grm::train
