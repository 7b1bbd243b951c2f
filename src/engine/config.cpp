#include "engine/config.h"

#include <filesystem>
#include <fstream>
#include <sstream>
#include <unistd.h>

#include "core/error.h"
#include "core/fs.h"

namespace grm::engine {

using nlohmann::json;
namespace fs = std::filesystem;

Arch arch_from_name(const std::string& name) {
  if (name == "LlamaForCausalLM") return Arch::Llama;
  if (name == "MistralForCausalLM") return Arch::Mistral;
  if (name == "Qwen2ForCausalLM") return Arch::Qwen2;
  throw Error("unsupported architecture '" + name +
              "' (supported: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)");
}

std::string arch_name(Arch arch) {
  switch (arch) {
    case Arch::Llama: return "LlamaForCausalLM";
    case Arch::Mistral: return "MistralForCausalLM";
    case Arch::Qwen2: return "Qwen2ForCausalLM";
  }
  return "LlamaForCausalLM";
}

namespace {

[[noreturn]] void fail(const std::string& source, const std::string& field, const std::string& what) {
  throw Error(source + ": " + field + ": " + what);
}

// Reads j[key] as an integer; absent or null → nullopt.
std::optional<int64_t> opt_int(const json& j, const std::string& key, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  const json& v = j[key];
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float()) {
    const double d = v.get<double>();
    if (d == static_cast<double>(static_cast<int64_t>(d))) return static_cast<int64_t>(d);
  }
  fail(src, key, "must be an integer, got " + v.dump());
}

int64_t req_int(const json& j, const std::string& key, const std::string& src) {
  auto v = opt_int(j, key, src);
  if (!v) fail(src, key, "missing (required)");
  return *v;
}

std::optional<double> opt_num(const json& j, const std::string& key, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  if (!j[key].is_number()) fail(src, key, "must be a number, got " + j[key].dump());
  return j[key].get<double>();
}

std::optional<bool> opt_bool(const json& j, const std::string& key, const std::string& src) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  if (!j[key].is_boolean()) fail(src, key, "must be true or false, got " + j[key].dump());
  return j[key].get<bool>();
}


}  // namespace

ModelConfig ModelConfig::from_json(const json& j, const std::string& src) {
  if (!j.is_object()) throw Error(src + ": config must be a JSON object");
  ModelConfig c;
  c.raw = j;

  if (j.contains("architectures")) {
    const json& a = j["architectures"];
    if (!a.is_array() || a.empty() || !a[0].is_string())
      fail(src, "architectures", "must be a non-empty list of strings");
    try {
      c.arch = arch_from_name(a[0].get<std::string>());
    } catch (const Error& e) {
      fail(src, "architectures", e.what());
    }
  } else if (j.contains("model_type") && j["model_type"].is_string()) {
    const std::string mt = j["model_type"].get<std::string>();
    if (mt == "llama") c.arch = Arch::Llama;
    else if (mt == "mistral") c.arch = Arch::Mistral;
    else if (mt == "qwen2") c.arch = Arch::Qwen2;
    else fail(src, "model_type", "unsupported model type '" + mt + "'");
  } else {
    fail(src, "architectures", "missing (required)");
  }

  c.hidden_size = req_int(j, "hidden_size", src);
  c.intermediate_size = req_int(j, "intermediate_size", src);
  c.num_hidden_layers = req_int(j, "num_hidden_layers", src);
  c.num_attention_heads = req_int(j, "num_attention_heads", src);
  c.vocab_size = req_int(j, "vocab_size", src);
  c.num_key_value_heads = opt_int(j, "num_key_value_heads", src).value_or(c.num_attention_heads);
  if (c.num_attention_heads > 0) c.head_dim = c.hidden_size / c.num_attention_heads;
  if (auto hd = opt_int(j, "head_dim", src)) c.head_dim = *hd;
  if (auto v = opt_int(j, "max_position_embeddings", src)) c.max_position_embeddings = *v;
  if (auto v = opt_num(j, "rms_norm_eps", src)) c.rms_norm_eps = *v;
  if (auto v = opt_num(j, "rope_theta", src)) c.rope_theta = *v;
  if (auto v = opt_bool(j, "tie_word_embeddings", src)) c.tie_word_embeddings = *v;
  c.attention_bias = c.arch == Arch::Qwen2;
  if (auto v = opt_bool(j, "attention_bias", src)) c.attention_bias = *v || c.arch == Arch::Qwen2;

  if (opt_bool(j, "mlp_bias", src).value_or(false)) fail(src, "mlp_bias", "MLP biases are not supported");

  if (j.contains("hidden_act") && !j["hidden_act"].is_null()) {
    if (!j["hidden_act"].is_string()) fail(src, "hidden_act", "must be a string");
    const std::string act = j["hidden_act"].get<std::string>();
    if (act == "silu" || act == "swish") c.hidden_act = Activation::Silu;
    else if (act == "gelu_pytorch_tanh") c.hidden_act = Activation::GeluTanh;
    else fail(src, "hidden_act", "unsupported activation '" + act + "' (supported: silu, gelu_pytorch_tanh)");
  }

  if (c.arch == Arch::Mistral) {
    c.sliding_window = opt_int(j, "sliding_window", src).value_or(0);
  } else if (c.arch == Arch::Qwen2 && opt_bool(j, "use_sliding_window", src).value_or(false)) {
    fail(src, "use_sliding_window", "sliding-window attention is not supported for Qwen2");
  }

  if (j.contains("rope_scaling") && !j["rope_scaling"].is_null()) {
    const json& rs = j["rope_scaling"];
    std::string type;
    if (rs.is_object()) {
      if (rs.contains("rope_type") && rs["rope_type"].is_string()) type = rs["rope_type"].get<std::string>();
      else if (rs.contains("type") && rs["type"].is_string()) type = rs["type"].get<std::string>();
    }
    if (type != "default") fail(src, "rope_scaling", "unsupported rope scaling " + rs.dump());
  }

  c.bos_token_id = opt_int(j, "bos_token_id", src);
  if (j.contains("eos_token_id") && !j["eos_token_id"].is_null()) {
    const json& e = j["eos_token_id"];
    if (e.is_array()) {
      for (const auto& x : e) {
        if (!x.is_number_integer()) fail(src, "eos_token_id", "list entries must be integers");
        c.eos_token_ids.push_back(x.get<int64_t>());
      }
    } else {
      c.eos_token_ids.push_back(req_int(j, "eos_token_id", src));
    }
  }

  if (j.contains("torch_dtype") && !j["torch_dtype"].is_null()) {
    if (!j["torch_dtype"].is_string()) fail(src, "torch_dtype", "must be a string");
    c.torch_dtype = j["torch_dtype"].get<std::string>();
  }
  c.validate(src);
  return c;
}

void ModelConfig::validate(const std::string& src) const {
  auto positive = [&](const char* field, int64_t v) {
    if (v <= 0) fail(src, field, "must be positive, got " + std::to_string(v));
  };
  positive("hidden_size", hidden_size);
  positive("intermediate_size", intermediate_size);
  positive("num_hidden_layers", num_hidden_layers);
  positive("num_attention_heads", num_attention_heads);
  positive("num_key_value_heads", num_key_value_heads);
  positive("head_dim", head_dim);
  positive("vocab_size", vocab_size);
  positive("max_position_embeddings", max_position_embeddings);
  if (num_attention_heads % num_key_value_heads != 0)
    fail(src, "num_key_value_heads",
         "num_attention_heads (" + std::to_string(num_attention_heads) + ") must be a multiple of it (" +
             std::to_string(num_key_value_heads) + ")");
  if (head_dim % 2 != 0) fail(src, "head_dim", "must be even for rotary embeddings, got " + std::to_string(head_dim));
  if (!(rms_norm_eps > 0)) fail(src, "rms_norm_eps", "must be positive");
  if (!(rope_theta > 0)) fail(src, "rope_theta", "must be positive");
  if (sliding_window < 0) fail(src, "sliding_window", "must be non-negative");
  auto token = [&](const char* field, int64_t id) {
    if (id < 0 || id >= vocab_size)
      fail(src, field, "token id " + std::to_string(id) + " outside the vocabulary [0, " +
                           std::to_string(vocab_size) + ")");
  };
  if (bos_token_id) token("bos_token_id", *bos_token_id);
  for (int64_t e : eos_token_ids) token("eos_token_id", e);
  if (torch_dtype != "float32" && torch_dtype != "bfloat16" && torch_dtype != "float16")
    fail(src, "torch_dtype", "must be float32, bfloat16 or float16, got '" + torch_dtype + "'");
}

ModelConfig ModelConfig::load(const std::string& path) {
  std::string file = path;
  if (fs::is_directory(path)) file = (fs::path(path) / "config.json").string();
  const std::string text = read_file(file);
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    throw Error(file + ": invalid JSON: " + e.what());
  }
  return from_json(j, file);
}

json ModelConfig::to_json() const {
  json j = raw.is_object() ? raw : json::object();
  j["architectures"] = json::array({arch_name(arch)});
  switch (arch) {
    case Arch::Llama: j["model_type"] = "llama"; break;
    case Arch::Mistral: j["model_type"] = "mistral"; break;
    case Arch::Qwen2: j["model_type"] = "qwen2"; break;
  }
  j["hidden_size"] = hidden_size;
  j["intermediate_size"] = intermediate_size;
  j["num_hidden_layers"] = num_hidden_layers;
  j["num_attention_heads"] = num_attention_heads;
  j["num_key_value_heads"] = num_key_value_heads;
  j["head_dim"] = head_dim;
  j["vocab_size"] = vocab_size;
  j["max_position_embeddings"] = max_position_embeddings;
  j["rms_norm_eps"] = rms_norm_eps;
  j["rope_theta"] = rope_theta;
  j["tie_word_embeddings"] = tie_word_embeddings;
  j["attention_bias"] = attention_bias;
  j["hidden_act"] = hidden_act == Activation::Silu ? "silu" : "gelu_pytorch_tanh";
  if (arch == Arch::Mistral) j["sliding_window"] = sliding_window > 0 ? json(sliding_window) : json(nullptr);
  j["bos_token_id"] = bos_token_id ? json(*bos_token_id) : json(nullptr);
  if (eos_token_ids.empty()) j["eos_token_id"] = nullptr;
  else if (eos_token_ids.size() == 1) j["eos_token_id"] = eos_token_ids[0];
  else j["eos_token_id"] = eos_token_ids;
  j["torch_dtype"] = torch_dtype;
  return j;
}

void ModelConfig::save(const std::string& path) const { write_file_atomic(path, to_json().dump(2) + "\n"); }

}  // namespace grm::engine
