// Model hyper-parameters read from a Hugging Face style config.json (no torch here).
//
// Supported architectures: LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM (all "Llama-style":
// RMSNorm → GQA attention with RoPE → RMSNorm → gated MLP). Per-architecture differences are expressed as
// flags on ModelConfig (attention_bias, hidden_act, sliding_window, ...) so that further families (Gemma-2:
// extra norms, soft-capping, embedding scale) can be added as flags + an Arch value without a new class.
#pragma once
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace grm::engine {

enum class Arch { Llama, Mistral, Qwen2 };

// "LlamaForCausalLM" etc. Throws grm::Error for unknown names.
Arch arch_from_name(const std::string& name);
std::string arch_name(Arch arch);

enum class Activation { Silu, GeluTanh };

struct ModelConfig {
  Arch arch = Arch::Llama;
  int64_t hidden_size = 0;
  int64_t intermediate_size = 0;
  int64_t num_hidden_layers = 0;
  int64_t num_attention_heads = 0;
  int64_t num_key_value_heads = 0;  // default: num_attention_heads
  int64_t head_dim = 0;             // default: hidden_size / num_attention_heads
  int64_t vocab_size = 0;
  int64_t max_position_embeddings = 2048;
  double rms_norm_eps = 1e-6;
  double rope_theta = 10000.0;
  bool tie_word_embeddings = false;
  bool attention_bias = false;  // q/k/v projection biases (always true for Qwen2)
  Activation hidden_act = Activation::Silu;
  int64_t sliding_window = 0;  // 0: full attention (Mistral's window applies to every layer)
  std::optional<int64_t> bos_token_id;
  std::vector<int64_t> eos_token_ids;  // config "eos_token_id": int or list
  std::string torch_dtype = "float32";  // dtype of the weights on disk ("float32" | "bfloat16" | "float16")

  // The original JSON object: keys this struct does not model are written back unchanged by to_json().
  nlohmann::json raw = nlohmann::json::object();

  int64_t num_kv_groups() const { return num_attention_heads / num_key_value_heads; }

  // Parses and validates. `source` (usually the file path) starts every error message, followed by the field.
  static ModelConfig from_json(const nlohmann::json& j, const std::string& source = "config.json");
  // Reads a config.json file (or <dir>/config.json when `path` is a directory).
  static ModelConfig load(const std::string& path);

  // Throws grm::Error("<source>: <field>: <problem>") on inconsistent values.
  void validate(const std::string& source = "config") const;

  nlohmann::json to_json() const;
  // Writes to_json() atomically (temp file + rename).
  void save(const std::string& path) const;
};

}  // namespace grm::engine
