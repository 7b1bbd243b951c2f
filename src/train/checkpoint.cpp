#include "train/checkpoint.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <torch/torch.h>

#include "core/error.h"
#include "core/fs.h"
#include "core/template.h"
#include "engine/config.h"
#include "engine/weights.h"

namespace grm::train {

namespace fs = std::filesystem;

std::string state_path(const CheckpointSpec& spec) {
  return spec.state_path.empty() ? (fs::path(spec.out_dir) / "trainer_state.safetensors").string() : spec.state_path;
}

void write_checkpoint(Trainer& trainer, const CheckpointSpec& spec, double last_loss) {
  std::error_code ec;
  fs::create_directories(spec.out_dir, ec);
  if (ec) throw Error(spec.out_dir + ": cannot create directory: " + ec.message());
  const std::string sp = state_path(spec);
  if (fs::path(sp).has_parent_path()) fs::create_directories(fs::path(sp).parent_path(), ec);
  trainer.save_state(sp);

  const fs::path out(spec.out_dir);
  write_file_atomic((out / "tokenizer.json").string(), spec.tokenizer_json);
  write_file_atomic((out / "template.txt").string(), spec.template_text);
  engine::Transformer& master = trainer.model();
  if (spec.save_dtype == master.dtype()) {
    engine::save_model(master, spec.out_dir);
  } else {
    engine::Transformer copy(master.config(), spec.save_dtype);
    torch::NoGradGuard no_grad;
    const auto src = master.named_weights();
    auto dst = copy.named_weights();
    for (size_t i = 0; i < src.size(); ++i) dst[i].second.copy_(src[i].second);
    engine::save_model(copy, spec.out_dir);
  }
  nlohmann::json info = spec.info;
  info["step"] = trainer.steps_done();
  info["loss"] = last_loss;
  info["examples_seen"] = trainer.cursor();
  write_file_atomic((out / "training.json").string(), info.dump(2) + "\n");
}

void remove_stale_temp_files(const std::string& dir) {
  static const std::regex temp_name(R"(.+\.tmp\.[0-9]+)");
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) return;
  for (const auto& entry : fs::directory_iterator(dir, ec))
    if (entry.is_regular_file(ec) && std::regex_match(entry.path().filename().string(), temp_name))
      fs::remove(entry.path(), ec);
}

std::string builtin_template_text(const std::string& name) { return read_file(Template::builtin_path(name)); }

}  // namespace grm::train
