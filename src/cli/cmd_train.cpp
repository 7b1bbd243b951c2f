// grm train tokenizer | sft: train a byte-level BPE tokenizer, or fine-tune a judge model (SFT on gold
// judgments). The work is in src/train (run.h); this file only parses options.
#include <memory>

#include <fmt/core.h>

#include "cli/commands.h"
#include "core/error.h"
#include "train/run.h"

namespace {

struct TrainArgs {
  grm::train::TokenizerJob tok;
  grm::train::SftJob sft;
  std::string precision = "auto";
};

std::pair<CLI::App*, grm::cli::Runner> setup(CLI::App& app) {
  auto a = std::make_shared<TrainArgs>();
  auto* sub = app.add_subcommand("train", "Train a tokenizer or fine-tune a judge model (docs/training.md)");
  sub->require_subcommand(1);

  auto* t = sub->add_subcommand("tokenizer", "Train a byte-level BPE tokenizer (eos: <|endoftext|>)");
  t->add_option("--data", a->tok.data, "Text files: synth JSONL (rendered prompts + gold targets), "
                                       "prompt/target JSONL, or plain text (each line)")->required();
  t->add_option("--vocab", a->tok.vocab, "Vocabulary size (bytes + merges + specials)")->capture_default_str()->check(CLI::Range(257, 1 << 20));
  t->add_option("--min-frequency", a->tok.min_frequency, "Never merge pairs seen fewer times")->capture_default_str()->check(CLI::PositiveNumber);
  t->add_option("--seed", a->tok.seed, "Seed of the response orders rendered from synth records")->capture_default_str();
  t->add_option("--out", a->tok.out, "tokenizer.json to write (atomically)")->required();

  auto* s = sub->add_subcommand("sft", "Supervised fine-tuning on gold judgments, with resumable checkpoints");
  auto& j = a->sft;
  auto& o = j.options;
  s->add_option("--data", j.data, "Training JSONL: grm synth records, or {\"prompt\", \"target\"} lines")->required();
  s->add_option("--out", j.out, "Checkpoint directory (a loadable model directory)")->required();
  s->add_option("--model", j.model, "Start from this model directory (with tokenizer.json)");
  s->add_option("--init-config", j.init_config, "No --model: random init from this config.json (vocab_size and eos "
                                                "are set from --tokenizer)");
  s->add_option("--tokenizer", j.tokenizer, "tokenizer.json for --init-config (or to replace --model's)");
  s->add_option("--init-std", j.init_std, "Std of the random init")->capture_default_str();
  s->add_option("--steps", o.steps, "Total optimizer steps")->capture_default_str()->check(CLI::PositiveNumber);
  s->add_option("--lr", o.lr, "Peak learning rate")->capture_default_str()->check(CLI::PositiveNumber);
  s->add_option("--min-lr-ratio", o.min_lr_ratio, "Cosine decays to lr × this")->capture_default_str()->check(CLI::Range(0.0, 1.0));
  s->add_option("--warmup", o.warmup, "Linear warmup steps")->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--batch", o.batch, "Examples per step")->capture_default_str()->check(CLI::PositiveNumber);
  s->add_option("--micro-batch", o.micro_batch, "Examples per forward/backward (gradients accumulate; 0: --batch)")->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--seq-len", o.seq_len, "Skip examples longer than this many tokens")->capture_default_str()->check(CLI::Range(2, 1 << 20));
  s->add_option("--weight-decay", o.weight_decay, "AdamW weight decay (matrices only)")->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--clip", o.clip, "Max gradient norm (0: off)")->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--seed", o.seed, "Seed of the init, the data order and the response permutations")->capture_default_str();
  s->add_option("--precision", a->precision, "auto (mixed on CPUs with native bf16: AVX512_BF16 or AMX; else fp32), mixed (fp32 master weights, bf16 compute) or fp32")->capture_default_str();
  s->add_option("--save-every", j.save_every, "Checkpoint every N steps (and at the end; 0: end only)")->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_option("--save-dtype", j.save_dtype, "dtype of OUT/model.safetensors (bf16 or f32)")->capture_default_str();
  s->add_option("--state", j.state, "Trainer state file (default OUT/trainer_state.safetensors)");
  s->add_flag("--resume", j.resume, "Continue from the trainer state (exactly: same data, same optimizer)");
  s->add_option("--template", j.template_name, "Built-in template copied to OUT/template.txt")->capture_default_str();
  s->add_option("--log-every", j.log_every, "Progress line every N steps")->capture_default_str()->check(CLI::PositiveNumber);
  s->add_option("--log", j.log_jsonl, "Append one JSON line per step (loss, lr, tokens, seconds) to this file");
  s->add_option("--threads", j.threads, "Intra-op threads (0: all cores with mixed precision, 1 with fp32, whose matmuls run on the BLAS library's own threads)")->capture_default_str()->check(CLI::NonNegativeNumber);
  s->add_flag("--quiet", j.quiet, "No progress lines");

  return {sub, [a, t, s] {
            if (t->parsed()) {
              const int v = grm::train::run_tokenizer_job(a->tok);
              fmt::print(stderr, "tokenizer: {} tokens → {}\n", v, a->tok.out);
              return 0;
            }
            if (s->parsed()) {
              a->sft.options.precision = grm::train::parse_precision(a->precision);
              grm::train::run_sft_job(a->sft);
              return 0;
            }
            return 2;
          }};
}

GRM_COMMAND(80, setup);

}  // namespace
