// Checkpoints of a training run.
//
// A checkpoint is a model directory that grm generate / grm score load as it is —
//   OUT/config.json  OUT/model.safetensors (in the save dtype)  OUT/tokenizer.json  OUT/template.txt
//   OUT/training.json (provenance: step, loss, options)
// — plus the trainer state file (trainer.h; by default OUT/trainer_state.safetensors). Every file is written
// atomically (temp file + rename) and the state file first, so a kill at any moment leaves each file complete:
// the model directory always loads, and the state file always describes one consistent step (resume reads
// only the state file, never the model weights).
#pragma once
#include <string>

#include <c10/core/ScalarType.h>
#include <nlohmann/json.hpp>

#include "core/fs.h"
#include "train/trainer.h"

namespace grm::train {

struct CheckpointSpec {
  std::string out_dir;
  std::string state_path;      // empty: out_dir/trainer_state.safetensors
  std::string tokenizer_json;  // the tokenizer.json text to write
  std::string template_text;   // the template.txt text to write
  c10::ScalarType save_dtype = c10::kBFloat16;
  nlohmann::json info = nlohmann::json::object();  // extra provenance for training.json
};

std::string state_path(const CheckpointSpec& spec);

void write_checkpoint(Trainer& trainer, const CheckpointSpec& spec, double last_loss);

// Removes temp files ("<name>.tmp.<pid>") a killed run left in `dir`.
void remove_stale_temp_files(const std::string& dir);

// The text of a built-in template file (templates/<name>.txt), looked up like grm::Template::builtin.
std::string builtin_template_text(const std::string& name);

}  // namespace grm::train
