#include "engine/weights.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "core/error.h"
#include "engine/safetensors.h"

namespace grm::engine {

namespace fs = std::filesystem;
using nlohmann::json;

c10::ScalarType dtype_from_name(const std::string& name) {
  if (name == "float32" || name == "f32" || name == "fp32" || name == "float") return torch::kFloat32;
  if (name == "bfloat16" || name == "bf16") return torch::kBFloat16;
  if (name == "float16" || name == "f16" || name == "fp16" || name == "half") return torch::kFloat16;
  throw Error("unknown dtype '" + name + "' (expected float32/f32, bfloat16/bf16 or float16/f16)");
}

std::string dtype_name(c10::ScalarType dtype) {
  switch (dtype) {
    case torch::kFloat32: return "float32";
    case torch::kBFloat16: return "bfloat16";
    case torch::kFloat16: return "float16";
    default: throw Error(std::string("unsupported model dtype ") + c10::toString(dtype));
  }
}

namespace {

// The safetensors files of a model directory and which file holds each tensor.
struct WeightFiles {
  std::string label;  // the file named in errors: model.safetensors or the index
  std::vector<SafetensorsFile> files;
  std::map<std::string, size_t> where;
};

WeightFiles open_weight_files(const std::string& dir) {
  WeightFiles w;
  const fs::path single = fs::path(dir) / "model.safetensors";
  const fs::path index = fs::path(dir) / "model.safetensors.index.json";
  if (fs::exists(single)) {
    w.label = single.string();
    w.files.push_back(SafetensorsFile::open(w.label));
    for (const auto& [name, info] : w.files[0].tensors()) w.where[name] = 0;
    return w;
  }
  if (!fs::exists(index))
    throw Error(dir + ": no model weights (expected model.safetensors or model.safetensors.index.json)");
  w.label = index.string();
  std::ifstream in(index);
  if (!in) throw Error(w.label + ": cannot open for reading");
  json j;
  try {
    j = json::parse(in);
  } catch (const json::exception& e) {
    throw Error(w.label + ": invalid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
    throw Error(w.label + ": weight_map: missing or not an object");
  std::map<std::string, size_t> file_index;
  for (const auto& [name, file] : j["weight_map"].items()) {
    if (!file.is_string()) throw Error(w.label + ": weight_map: entry for " + name + " is not a file name");
    const std::string shard = file.get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard == "..")
      throw Error(w.label + ": weight_map: bad shard file name '" + shard + "'");
    auto it = file_index.find(shard);
    if (it == file_index.end()) {
      w.files.push_back(SafetensorsFile::open((fs::path(dir) / shard).string()));
      it = file_index.emplace(shard, w.files.size() - 1).first;
    }
    if (!w.files[it->second].contains(name))
      throw Error(w.files[it->second].path() + ": tensor " + name + " listed in " + w.label + " is not in the file");
    w.where[name] = it->second;
  }
  return w;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string name_list(const std::vector<std::string>& names) {
  std::string out;
  const size_t shown = std::min<size_t>(names.size(), 8);
  for (size_t i = 0; i < shown; ++i) out += (i ? ", " : "") + names[i];
  if (names.size() > shown) out += ", ... (" + std::to_string(names.size() - shown) + " more)";
  return out;
}

bool ignorable(const std::string& name, const ModelConfig& config) {
  const std::string suffix = "rotary_emb.inv_freq";
  if (name.size() >= suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
    return true;
  return config.tie_word_embeddings && name == "lm_head.weight";
}

// The decoder block a tensor belongs to ("model.layers.N."), or -1.
int64_t block_of(const std::string& name) {
  const std::string prefix = "model.layers.";
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  const size_t dot = name.find('.', prefix.size());
  if (dot == std::string::npos || dot == prefix.size()) return -1;
  int64_t n = 0;
  for (size_t i = prefix.size(); i < dot; ++i) {
    if (name[i] < '0' || name[i] > '9') return -1;
    n = n * 10 + (name[i] - '0');
  }
  return n;
}

}  // namespace

void load_weights(Transformer& model, const std::string& dir, const AfterLayer& after_layer) {
  const WeightFiles w = open_weight_files(dir);
  const auto expected = model.named_weights();

  std::set<std::string> expected_names;
  std::vector<std::string> missing, unexpected;
  for (const auto& [name, p] : expected) {
    expected_names.insert(name);
    if (!w.where.count(name)) missing.push_back(name);
  }
  for (const auto& [name, file] : w.where)
    if (!expected_names.count(name) && !ignorable(name, model.config())) unexpected.push_back(name);
  if (!missing.empty() || !unexpected.empty()) {
    std::string msg = w.label + ": tensors do not match config.json (" + arch_name(model.config().arch) + ")";
    if (!missing.empty()) msg += "; missing: " + name_list(missing);
    if (!unexpected.empty()) msg += "; unexpected: " + name_list(unexpected);
    throw Error(msg);
  }

  for (const auto& [name, p] : expected) {
    const SafetensorsFile& f = w.files[w.where.at(name)];
    const TensorInfo& info = f.tensors().at(name);
    if (info.shape != p.sizes().vec())
      throw Error(f.path() + ": tensor " + name + " has shape " + shape_str(info.shape) + ", config.json implies " +
                  shape_str(p.sizes().vec()));
    if (info.dtype != "F32" && info.dtype != "BF16" && info.dtype != "F16")
      throw Error(f.path() + ": tensor " + name + " has dtype " + info.dtype + " (expected F32, BF16 or F16)");
  }
  torch::NoGradGuard no_grad;
  std::map<int64_t, size_t> left;  // tensors of each block not loaded yet
  for (const auto& [name, p] : expected)
    if (const int64_t b = block_of(name); b >= 0) ++left[b];
  for (auto& [name, p] : expected) {
    p.copy_(w.files[w.where.at(name)].get(name));
    if (const int64_t b = block_of(name); b >= 0 && --left[b] == 0 && after_layer) after_layer(model, b);
  }
  if (after_layer) after_layer(model, model.config().num_hidden_layers);
}

std::shared_ptr<Transformer> load_model(const std::string& dir, c10::ScalarType dtype, const AfterLayer& after_layer) {
  if (!fs::is_directory(dir)) throw Error(dir + ": not a model directory");
  ModelConfig config = ModelConfig::load((fs::path(dir) / "config.json").string());
  auto model = std::make_shared<Transformer>(std::move(config), dtype);
  load_weights(*model, dir, after_layer);
  return model;
}

void save_model(const Transformer& model, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) throw Error(dir + ": cannot create directory: " + ec.message());
  save_safetensors((fs::path(dir) / "model.safetensors").string(), model.named_weights(), {{"format", "pt"}});
  ModelConfig config = model.config();
  config.torch_dtype = dtype_name(model.dtype());
  config.save((fs::path(dir) / "config.json").string());
}

}  // namespace grm::engine
