#include "train/run.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>

#include <malloc.h>

#include <ATen/Parallel.h>
#include <fmt/core.h>
#include <torch/torch.h>

#include "core/error.h"
#include "engine/bpe.h"
#include "engine/config.h"
#include "engine/weights.h"
#include "engine/worker_pool.h"
#include "train/checkpoint.h"

namespace grm::train {

namespace fs = std::filesystem;

int run_tokenizer_job(const TokenizerJob& job) {
  if (job.data.empty()) throw Error("give the training text with --data FILE");
  if (job.vocab < 257) throw Error("--vocab must be at least 257 (256 bytes + <|endoftext|>)");
  std::vector<std::string> texts;
  for (const auto& f : job.data) {
    auto t = tokenizer_corpus(f, job.seed);
    texts.insert(texts.end(), std::make_move_iterator(t.begin()), std::make_move_iterator(t.end()));
  }
  engine::BpeTrainOptions opt;
  opt.min_frequency = job.min_frequency;
  const auto tok = engine::BpeTokenizer::train(texts, job.vocab, {"<|endoftext|>"}, opt);
  if (fs::path(job.out).has_parent_path()) fs::create_directories(fs::path(job.out).parent_path());
  tok.save(job.out);
  return tok.vocab_size();
}

namespace {

std::string fmt_duration(double s) {
  const auto t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}h{:02}m{:02}s", t / 3600, t / 60 % 60, t % 60);
  if (t >= 60) return fmt::format("{}m{:02}s", t / 60, t % 60);
  return fmt::format("{}s", t);
}

struct Start {
  std::shared_ptr<engine::Transformer> model;
  std::string tokenizer_path;
};

Start prepare_model(const SftJob& job, const std::string& state) {
  std::error_code ec;
  if (job.resume) {
    if (!fs::exists(state, ec))
      throw Error(state + ": no trainer state to resume from (run without --resume to start)");
    Start s;
    s.tokenizer_path = (fs::path(job.out) / "tokenizer.json").string();
    auto config = engine::ModelConfig::from_json(Trainer::state_config(state), state);
    s.model = std::make_shared<engine::Transformer>(std::move(config), torch::kFloat);
    return s;  // weights come from the state
  }
  if (fs::exists(state, ec))
    throw Error(state + ": a trainer state exists; pass --resume to continue that run, or delete it to start over");
  if (!job.model.empty() && fs::exists(fs::path(job.model) / "config.json", ec)) {
    Start s{engine::load_model(job.model, torch::kFloat), (fs::path(job.model) / "tokenizer.json").string()};
    if (!job.tokenizer.empty()) s.tokenizer_path = job.tokenizer;
    return s;
  }
  if (job.init_config.empty())
    throw Error(job.model.empty() ? "give --model DIR, or --init-config CONFIG.json with --tokenizer FILE"
                                  : job.model + ": no model there; pass --init-config (and --tokenizer) to start "
                                                "from a random init");
  if (job.tokenizer.empty()) throw Error("--init-config needs --tokenizer tokenizer.json");
  const auto tok = engine::BpeTokenizer::from_json_file(job.tokenizer);
  auto config = engine::ModelConfig::load(job.init_config);
  config.vocab_size = tok.vocab_size();
  if (tok.eos_id()) config.eos_token_ids = {*tok.eos_id()};
  config.bos_token_id.reset();
  Start s{std::make_shared<engine::Transformer>(std::move(config), torch::kFloat), job.tokenizer};
  s.model->init_random(job.options.seed, job.init_std);
  return s;
}

}  // namespace

int train_threads(int requested, Precision precision, int cores) {
  if (requested > 0) return requested;
  return precision == Precision::Mixed ? std::max(1, cores) : 1;
}

std::vector<double> run_sft_job(const SftJob& job) {
  if (job.out.empty()) throw Error("give the checkpoint directory with --out DIR");
  at::set_num_threads(
      train_threads(job.threads, job.options.precision, engine::available_cores()));
#ifdef __GLIBC__
  // Keep freed activation buffers in the heap: by default glibc returns every large block to the kernel, and
  // each step then page-faults its activations in again (measured: ~40% of a bf16 step; docs/training.md).
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 << 20);
#endif
  const auto t_start = std::chrono::steady_clock::now();
  CheckpointSpec spec;
  spec.out_dir = job.out;
  spec.state_path = job.state;
  spec.save_dtype = engine::dtype_from_name(job.save_dtype);
  const std::string state = state_path(spec);
  remove_stale_temp_files(job.out);
  if (fs::path(state).has_parent_path()) remove_stale_temp_files(fs::path(state).parent_path().string());

  Start start = prepare_model(job, state);
  spec.tokenizer_json = read_file(start.tokenizer_path);
  spec.template_text = builtin_template_text(job.template_name);
  std::shared_ptr<const engine::Tokenizer> tok = engine::Tokenizer::load(start.tokenizer_path);
  auto data = load_sft_source(job.data, job.options.seed);
  Trainer trainer(start.model, tok, data, job.options);
  if (job.resume) trainer.load_state(state);

  const auto& o = job.options;
  int64_t params = 0;
  for (const auto& [n, p] : start.model->named_weights()) params += p.numel();
  // Provenance names the data by file name and size, not by where it sat on the machine that trained.
  std::error_code size_error;
  const auto data_bytes = fs::file_size(job.data, size_error);
  spec.info = {{"data", fs::path(job.data).filename().string()},
               {"records", data->size()},  {"parameters", params},
               {"steps", o.steps},     {"batch", o.batch},         {"lr", o.lr},
               {"warmup", o.warmup},   {"seq_len", o.seq_len},     {"seed", o.seed},
               {"precision", to_string(o.precision)},              {"threads", at::get_num_threads()}};
  if (!size_error) spec.info["data_bytes"] = data_bytes;
  if (!job.quiet)
    fmt::print(stderr, "train: {} parameters, {} records, steps {}..{}, batch {}, {} precision, {} threads\n", params,
               data->size(), trainer.steps_done() + 1, o.steps, o.batch, to_string(o.precision),
               at::get_num_threads());

  std::ofstream log;
  if (!job.log_jsonl.empty()) {
    log.open(job.log_jsonl, std::ios::app);
    if (!log) throw Error(job.log_jsonl + ": cannot open for appending");
  }
  std::vector<double> losses;
  double win_loss = 0, win_tokens = 0, win_seconds = 0, run_seconds = 0;
  int64_t win_steps = 0, first = trainer.steps_done();
  double last_loss = 0;
  while (trainer.steps_done() < o.steps) {
    const std::clock_t c0 = std::clock();
    const StepStats st = trainer.step();
    const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    losses.push_back(st.loss);
    last_loss = st.loss;
    win_loss += st.loss;
    win_tokens += static_cast<double>(st.real_tokens);
    win_seconds += st.seconds;
    run_seconds += st.seconds;
    ++win_steps;
    if (log.is_open())
      log << nlohmann::json{{"step", st.step},          {"loss", st.loss},       {"lr", st.lr},
                            {"grad_norm", st.grad_norm}, {"tokens", st.real_tokens},
                            {"target_tokens", st.target_tokens},                  {"skipped", st.skipped},
                            {"seconds", st.seconds},     {"cpu_seconds", cpu},
                            {"forward_seconds", st.forward_seconds},           {"backward_seconds", st.backward_seconds},
                            {"update_seconds", st.update_seconds}}.dump()
          << "\n" << std::flush;
    const bool last = st.step == o.steps;
    if (!job.quiet && (st.step % std::max<int64_t>(1, job.log_every) == 0 || last || st.step == first + 1)) {
      const double per_step = run_seconds / static_cast<double>(st.step - first);
      fmt::print(stderr, "step {}/{}  loss {:.4f}  lr {:.2e}  gnorm {:.2f}  tok/s {:.0f}  elapsed {}  eta {}\n",
                 st.step, o.steps, win_loss / static_cast<double>(win_steps), st.lr, st.grad_norm,
                 win_tokens / std::max(1e-9, win_seconds), fmt_duration(run_seconds),
                 fmt_duration(per_step * static_cast<double>(o.steps - st.step)));
      win_loss = win_tokens = win_seconds = 0;
      win_steps = 0;
    }
    if (last || (job.save_every > 0 && st.step % job.save_every == 0)) {
      write_checkpoint(trainer, spec, last_loss);
      if (!job.quiet) fmt::print(stderr, "checkpoint: step {} → {}\n", st.step, job.out);
    }
  }
  if (!job.quiet) {
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_start).count();
    fmt::print(stderr, "train: done at step {} (loss {:.4f}) in {}\n", trainer.steps_done(), last_loss,
               fmt_duration(wall));
  }
  return losses;
}

}  // namespace grm::train
