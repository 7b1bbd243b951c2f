// The `grm train` jobs as library calls (the CLI only parses options into these structs).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "train/trainer.h"

namespace grm::train {

struct TokenizerJob {
  std::vector<std::string> data;  // files (tokenizer_corpus() decides how each is read)
  int vocab = 1024;               // bytes + merges + special tokens
  int min_frequency = 2;
  uint64_t seed = 0;
  std::string out;  // tokenizer.json path (written atomically)
};

// Trains byte-level BPE with the special token <|endoftext|> (the eos). Returns the vocabulary size reached.
int run_tokenizer_job(const TokenizerJob& job);

struct SftJob {
  std::string data;         // training JSONL
  std::string out;          // checkpoint directory
  std::string model;        // start from this model directory (needs tokenizer.json), if it exists
  std::string init_config;  // else: random init from this config.json ...
  std::string tokenizer;    // ... with this tokenizer.json (vocab_size and eos are taken from it)
  double init_std = 0.02;
  std::string state;        // trainer state file; empty: OUT/trainer_state.safetensors
  bool resume = false;      // continue from the state file (model, optimizer, data cursor)
  TrainOptions options;
  int64_t save_every = 200;
  int64_t log_every = 10;
  std::string save_dtype = "bf16";
  std::string template_name = "compact";  // copied to OUT/template.txt
  std::string log_jsonl;  // optional: one JSON line per step appended here
  int threads = 0;        // intra-op threads (0: train_threads' choice)
  bool quiet = false;     // no progress lines
};

// Intra-op threads for a run: `requested` when > 0, else every core for mixed precision (oneDNN runs the
// bf16 matmuls on these threads) and 1 for fp32, whose matmuls go to the BLAS library: OpenBLAS (the pthread
// build `make setup` installs) runs them on its own threads over all cores, and intra-op threads next to
// them only oversubscribe the machine (measured on a 2-core AMD EPYC, fp32: 2 066 tokens/s with 1 intra-op
// thread, 1 122 with 2; docs/training.md).
int train_threads(int requested, Precision precision, int cores);

// Runs (or resumes) SFT until options.steps; checkpoints every save_every steps and at the end. Returns the
// per-step losses of the steps run by this call.
std::vector<double> run_sft_job(const SftJob& job);

}  // namespace grm::train
