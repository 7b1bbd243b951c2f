// Options shared by the commands that run a model (--model, --dtype, --kv-dtype, --threads, --max-batch,
// --no-pack-weights).
#pragma once
#include <memory>
#include <string>

#include <CLI/CLI.hpp>

#include "engine/local_generator.h"

namespace grm::cli {

struct ModelArgs {
  std::string model;  // empty: the bundled default
  std::string dtype = "auto";  // bf16 where the CPU has native bf16, else f32 (engine/cpu_dtype.h)
  std::string kv_dtype = "auto";  // f16 with f32 compute on AVX2 CPUs, else the compute dtype (engine/cpu_dtype.h)
  int threads = 0;
  int max_batch = 64;
  bool no_pack_weights = false;
};

// The bundled model: $GRM_MODEL, else models/grm-tiny next to the executable's parent, else in the source tree.
std::string default_model_dir();
void add_model_options(CLI::App* sub, ModelArgs& args);
std::unique_ptr<engine::LocalGenerator> open_generator(const ModelArgs& args);

}  // namespace grm::cli
