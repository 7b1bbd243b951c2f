// grm init-model: a randomly initialised model directory (config.json, model.safetensors, tokenizer).
#ifdef GRM_WITH_TORCH
#include <algorithm>
#include <filesystem>
#include <memory>

#include <fmt/core.h>

#include "cli/commands.h"
#include "core/error.h"
#include "engine/bpe.h"
#include "engine/config.h"
#include "engine/model.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"

namespace {

namespace fs = std::filesystem;

struct InitArgs {
  std::string config;
  std::string out;
  std::string tokenizer;
  std::string dtype = "f32";
  uint64_t seed = 0;
  double init_std = 0.02;
};

// The tokenizer file behind `path` (a file, or a directory holding tokenizer.json / tokenizer.model).
fs::path tokenizer_file(const std::string& path) {
  if (!fs::is_directory(path)) return path;
  for (const char* name : {"tokenizer.json", "tokenizer.model"})
    if (fs::exists(fs::path(path) / name)) return fs::path(path) / name;
  throw grm::Error(path + ": no tokenizer.json or tokenizer.model in this directory");
}

// Copies src to dst atomically (temp file + rename).
void copy_atomic(const fs::path& src, const fs::path& dst) {
  const fs::path tmp = dst.string() + ".tmp";
  std::error_code ec;
  fs::copy_file(src, tmp, fs::copy_options::overwrite_existing, ec);
  if (!ec) fs::rename(tmp, dst, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw grm::Error(dst.string() + ": cannot copy tokenizer from " + src.string() + ": " + ec.message());
  }
}

int run(const InitArgs& a) {
  using namespace grm::engine;
  ModelConfig config = ModelConfig::load(a.config);
  const c10::ScalarType dtype = dtype_from_name(a.dtype);
  if (!(a.init_std > 0)) throw grm::Error("--init-std must be positive");
  std::error_code ec;
  fs::create_directories(a.out, ec);
  if (ec) throw grm::Error(a.out + ": cannot create directory: " + ec.message());

  // The tokenizer decides the vocabulary floor and the special ids.
  std::unique_ptr<Tokenizer> tok;
  if (!a.tokenizer.empty()) {
    const fs::path src = tokenizer_file(a.tokenizer);
    tok = Tokenizer::load(src.string());
    const bool spm = src.extension() == ".model";
    copy_atomic(src, fs::path(a.out) / (spm ? "tokenizer.model" : "tokenizer.json"));
  } else {
    auto bpe = std::make_unique<BpeTokenizer>(BpeTokenizer::byte_level({"<|endoftext|>"}));
    bpe->save((fs::path(a.out) / "tokenizer.json").string());
    tok = std::move(bpe);
  }
  config.vocab_size = std::max<int64_t>(config.vocab_size, tok->vocab_size());
  config.eos_token_ids.clear();
  if (auto eos = tok->eos_id()) config.eos_token_ids.push_back(*eos);
  config.bos_token_id.reset();
  if (auto bos = tok->bos_id()) config.bos_token_id = *bos;
  config.torch_dtype = dtype_name(dtype);
  config.validate(a.config);

  Transformer model(config, dtype);
  model.init_random(a.seed, a.init_std);
  save_model(model, a.out);

  int64_t params = 0;
  for (const auto& [name, p] : model.named_weights()) params += p.numel();
  fmt::print("{}: {} with {} parameters ({} layers, hidden {}, vocab {}), {}, seed {}\n", a.out,
             arch_name(config.arch), params, config.num_hidden_layers, config.hidden_size, config.vocab_size,
             config.torch_dtype, a.seed);
  return 0;
}

std::pair<CLI::App*, grm::cli::Runner> setup(CLI::App& app) {
  auto args = std::make_shared<InitArgs>();
  auto* sub = app.add_subcommand("init-model", "Write a randomly initialised model directory (for tests and training from scratch)");
  sub->add_option("--config", args->config, "HF-style config.json (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)")
      ->required();
  sub->add_option("--out", args->out, "Output directory (config.json, model.safetensors, tokenizer)")->required();
  sub->add_option("--seed", args->seed, "Seed of the weight initialisation")->capture_default_str();
  sub->add_option("--tokenizer", args->tokenizer,
                  "Tokenizer to copy (tokenizer.json, tokenizer.model or a directory holding one); default: a "
                  "byte-level BPE with <|endoftext|> as eos");
  sub->add_option("--dtype", args->dtype, "Weight dtype on disk: f32 | bf16")->capture_default_str();
  sub->add_option("--init-std", args->init_std, "Standard deviation of the normal weight init")->capture_default_str();
  sub->footer("vocab_size becomes at least the tokenizer's size; eos/bos ids are taken from the tokenizer. "
              "Norm weights are 1, biases 0; the same seed gives the same weights.");
  return {sub, [args] { return run(*args); }};
}

}  // namespace

GRM_COMMAND(30, setup);
#endif  // GRM_WITH_TORCH
