// The seams between the scorer and whatever runs the model (in-process engine or a remote cluster).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace grm {

struct SamplingParams {
  double temperature = 0.5;  // 0 → greedy
  double top_p = 1.0;
  int top_k = 0;  // 0 → off
  int max_tokens = 512;
  std::vector<std::string> stop;
  uint64_t seed = 0;
  bool ignore_eos = false;  // keep sampling past the end token (benchmarks)
};

// One prompt and how many completions of it are wanted. Completion i of a request is sample
// j = first_index + i and uses the seed derive_seed(params.seed, j) (core/rng.h), so any sample can be
// reproduced alone ({n = 1, first_index = j}) and k samples can be drawn in rounds.
struct GenerationRequest {
  std::string prompt;
  int n = 1;
  SamplingParams params;
  int first_index = 0;
};

struct Completion {
  std::string text;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  std::string finish_reason;  // "stop" | "length" | "error"
  // Non-empty: this request could not run (e.g. its prompt does not fit the model's context); text is
  // empty. Other requests of the same call are unaffected.
  std::string error;
};

class Generator {
 public:
  virtual ~Generator() = default;
  // Returns, for each request, its n completions. Implementations should batch all requests together and
  // share prefill across the n completions of one prompt.
  virtual std::vector<std::vector<Completion>> generate(const std::vector<GenerationRequest>& requests) = 0;
};

// Scores sampled judgments (meta RM). Input: the rendered judge prompt and the judgment text.
struct MetaInput {
  std::string prompt;
  std::string judgment;
};

class MetaScorer {
 public:
  virtual ~MetaScorer() = default;
  virtual std::vector<double> score(const std::vector<MetaInput>& inputs) = 0;
};

}  // namespace grm
