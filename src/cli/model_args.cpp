#include "cli/model_args.h"

#include <cstdlib>
#include <filesystem>

#include "core/error.h"
#include "engine/config.h"
#include "engine/cpu_dtype.h"

namespace grm::cli {

namespace fs = std::filesystem;

std::string default_model_dir() {
  if (const char* env = std::getenv("GRM_MODEL"); env && *env) return env;
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const fs::path& p : {exe.parent_path() / ".." / "models" / "grm-tiny", exe.parent_path() / "models" / "grm-tiny"})
      if (fs::exists(p / "config.json", ec)) return fs::weakly_canonical(p, ec).string();
  }
  return (fs::path(GRM_SOURCE_DIR) / "models" / "grm-tiny").string();
}

void add_model_options(CLI::App* sub, ModelArgs& args) {
  sub->add_option("--model", args.model, "Model directory (config.json, model.safetensors, tokenizer.json); "
                                         "default: the bundled models/grm-tiny or $GRM_MODEL");
  sub->add_option("--dtype", args.dtype, "Compute dtype: auto (bf16 on CPUs with native bf16, AVX512_BF16 or AMX; else f32), bf16 or f32")->capture_default_str();
  sub->add_option("--kv-dtype", args.kv_dtype, "KV cache storage: auto (f16 when computing in f32 on an AVX2 CPU: half the memory traffic of decode attention; else the compute dtype), f32, bf16 or f16")->capture_default_str();
  sub->add_option("--threads", args.threads, "Threads (0: libtorch's default for its ops and all cores for decode attention; N: N for both)")->capture_default_str();
  sub->add_option("--max-batch", args.max_batch, "Sequences decoded together")->capture_default_str()->check(CLI::Range(1, 4096));
  sub->add_flag("--no-pack-weights", args.no_pack_weights,
                "Keep the linear weights as loaded: by default float32 models on AVX2 CPUs get them packed for "
                "grm's kernel, which made decodes 1.1-1.9x faster (README); the packed copy replaces them (in "
                "bfloat16 when the checkpoint is: half their memory)");
}

std::unique_ptr<engine::LocalGenerator> open_generator(const ModelArgs& args) {
  const std::string dir = args.model.empty() ? default_model_dir() : args.model;
  std::error_code ec;
  if (!fs::exists(fs::path(dir) / "config.json", ec)) {
    if (args.model.empty())
      throw Error("the bundled model is missing: " + dir + "/config.json not found (build it with `make model`, "
                  "or pass --model DIR / set GRM_MODEL)");
    throw Error(dir + ": not a model directory (no config.json)");
  }
  engine::EngineOptions opt;
  // The option's name in the message: both take dtype names.
  const auto named = [](const char* option, auto resolve) {
    try {
      return resolve();
    } catch (const Error& e) {
      throw Error(std::string(option) + ": " + e.what());
    }
  };
  opt.dtype = named("--dtype", [&] { return engine::resolve_compute_dtype(args.dtype); });
  const int64_t head_dim = engine::ModelConfig::load((fs::path(dir) / "config.json").string()).head_dim;
  opt.kv_dtype = named("--kv-dtype", [&] { return engine::resolve_kv_dtype(args.kv_dtype, opt.dtype, head_dim); });
  opt.threads = args.threads;
  opt.max_batch = args.max_batch;
  opt.pack_weights = !args.no_pack_weights;
  return engine::LocalGenerator::open(dir, opt);
}

}  // namespace grm::cli
