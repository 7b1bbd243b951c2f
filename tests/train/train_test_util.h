// Shared helpers of the train tests: a tiny model, a byte-level tokenizer, toy examples, temp dirs.
#pragma once
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "engine/bpe.h"
#include "engine/config.h"
#include "engine/model.h"
#include "train/sft_data.h"

namespace train_test {

inline grm::engine::ModelConfig tiny_config(int64_t vocab) {
  auto c = grm::engine::ModelConfig::from_json({{"architectures", {"LlamaForCausalLM"}},
                                                {"hidden_size", 32},
                                                {"intermediate_size", 64},
                                                {"num_hidden_layers", 2},
                                                {"num_attention_heads", 4},
                                                {"num_key_value_heads", 2},
                                                {"vocab_size", vocab},
                                                {"max_position_embeddings", 256},
                                                {"tie_word_embeddings", true}});
  return c;
}

inline std::shared_ptr<grm::engine::BpeTokenizer> byte_tokenizer() {
  return std::make_shared<grm::engine::BpeTokenizer>(grm::engine::BpeTokenizer::byte_level({"<|endoftext|>"}));
}

inline std::shared_ptr<grm::engine::Transformer> tiny_model(uint64_t seed = 1) {
  auto m = std::make_shared<grm::engine::Transformer>(tiny_config(257), c10::kFloat);
  m->init_random(seed);
  return m;
}

inline std::vector<grm::train::SftExample> toy_examples() {
  return {{"Q: 2+2?\nA:", " 4. Scores: \\boxed{4}"},
          {"Q: colour of sky?\nA:", " blue. Scores: \\boxed{9}"},
          {"Q: capital of Peru?\nA:", " Lima. Scores: \\boxed{7}"},
          {"Q: reverse abc\nA:", " cba. Scores: \\boxed{2}"}};
}

// A fresh empty directory under the system temp dir.
inline std::string temp_dir(const std::string& name) {
  const auto p = std::filesystem::temp_directory_path() /
                 ("grm-train-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(p);
  std::filesystem::create_directories(p);
  return p.string();
}

}  // namespace train_test
