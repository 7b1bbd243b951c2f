// Model directories: save/load round trip, sharded checkpoints, and the errors for bad weight files.
#include "engine/weights.h"

#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>

#include "core/error.h"
#include "engine/linear.h"
#include "engine/safetensors.h"

namespace fs = std::filesystem;
using grm::engine::ModelConfig;
using grm::engine::Transformer;

namespace {

class ModelWeights : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("grm_weights_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::shared_ptr<Transformer> model(const std::string& config, c10::ScalarType dtype = torch::kFloat) {
    auto m = std::make_shared<Transformer>(
        ModelConfig::load(std::string(GRM_TEST_DATA) + "/configs/" + config), dtype);
    m->init_random(3);
    return m;
  }
  // Saves `m`, then rewrites model.safetensors with `edit` applied to its tensor list.
  std::string saved(const Transformer& m,
                    const std::function<void(std::vector<std::pair<std::string, torch::Tensor>>&)>& edit) {
    const std::string d = (dir_ / "m").string();
    grm::engine::save_model(m, d);
    auto tensors = m.named_weights();
    edit(tensors);
    grm::engine::save_safetensors(d + "/model.safetensors", tensors);
    return d;
  }
  std::string load_error(const std::string& d) {
    try {
      grm::engine::load_model(d);
    } catch (const grm::Error& e) {
      return e.what();
    }
    return "";
  }
  static torch::Tensor logits(Transformer& m) {
    torch::NoGradGuard g;
    return m.forward(torch::arange(0, 40, torch::kLong).view({2, 20}) * 7);
  }
  fs::path dir_;
};

}  // namespace

TEST_F(ModelWeights, SaveLoadRoundTripGivesIdenticalLogits) {
  for (const char* cfg : {"tiny-llama.json", "tiny-qwen2.json"}) {
    auto m = model(cfg);
    const std::string d = (dir_ / cfg).string();
    grm::engine::save_model(*m, d);
    EXPECT_TRUE(fs::exists(d + "/config.json"));
    auto loaded = grm::engine::load_model(d);
    EXPECT_TRUE(torch::equal(logits(*m), logits(*loaded))) << cfg;
    EXPECT_EQ(loaded->config().to_json(), grm::engine::ModelConfig::load(d).to_json());
  }
}

TEST_F(ModelWeights, DtypeConversionAtLoad) {
  auto m = model("tiny-llama.json", torch::kBFloat16);
  const std::string d = (dir_ / "bf").string();
  grm::engine::save_model(*m, d);
  EXPECT_EQ(ModelConfig::load(d).torch_dtype, "bfloat16");
  EXPECT_EQ(grm::engine::SafetensorsFile::open(d + "/model.safetensors").tensors().at("lm_head.weight").dtype, "BF16");
  auto same = grm::engine::load_model(d, torch::kBFloat16);
  EXPECT_TRUE(torch::equal(logits(*m), logits(*same)));
  auto f32 = grm::engine::load_model(d, torch::kFloat);  // bf16 on disk → f32 compute: exact values
  EXPECT_EQ(f32->dtype(), torch::kFloat);
  EXPECT_TRUE(torch::equal(f32->named_weights()[1].second.to(torch::kBFloat16), m->named_weights()[1].second));
}

// The loader calls after_layer once per block, when that block's tensors are in, then once for the rest; packing
// each block there (LocalGenerator::open) gives the model that packing after the whole load gives, to the bit.
TEST_F(ModelWeights, BlocksArePackedAsTheyLoad) {
  for (const char* cfg : {"tiny-llama.json", "tiny-qwen2.json"}) {  // untied head, tied embedding
    auto m = model(cfg);
    const std::string d = (dir_ / cfg).string();
    grm::engine::save_model(*m, d);
    const int64_t L = m->config().num_hidden_layers;
    std::vector<int64_t> calls;
    auto streamed = grm::engine::load_model(d, torch::kFloat, [&](Transformer& t, int64_t layer) {
      calls.push_back(layer);
      if (layer < L) {  // that block's tensors are loaded: its q_proj equals the saved one
        const auto w = t.named_parameters(true)["model.layers." + std::to_string(layer) + ".self_attn.q_proj.weight"];
        EXPECT_TRUE(torch::equal(w, m->named_parameters(true)["model.layers." + std::to_string(layer) + ".self_attn.q_proj.weight"]));
      }
      EXPECT_EQ(t.pack_and_release(layer), grm::engine::packed_kernel_available());
    });
    std::vector<int64_t> expected(static_cast<size_t>(L) + 1);
    std::iota(expected.begin(), expected.end(), 0);
    EXPECT_EQ(calls, expected) << cfg;
    auto whole = grm::engine::load_model(d);
    if (whole->pack_linear_weights()) whole->release_packed_originals();
    EXPECT_EQ(streamed->weights_packed(), whole->weights_packed());
    EXPECT_EQ(streamed->originals_released(), whole->originals_released());
    EXPECT_TRUE(torch::equal(logits(*streamed), logits(*whole))) << cfg;
    EXPECT_THROW(streamed->pack_and_release(L + 1), grm::Error);
    EXPECT_THROW(streamed->pack_and_release(-1), grm::Error);
  }
  auto bf = model("tiny-llama.json", torch::kBFloat16);  // packing is for float32 compute only
  EXPECT_FALSE(bf->pack_and_release(0));
  EXPECT_FALSE(bf->weights_packed());
}

TEST_F(ModelWeights, ShardedCheckpointLoads) {
  auto m = model("tiny-qwen2.json");
  const std::string d = (dir_ / "sharded").string();
  grm::engine::save_model(*m, d);
  fs::remove(d + "/model.safetensors");
  auto all = m->named_weights();
  std::vector<std::pair<std::string, torch::Tensor>> a(all.begin(), all.begin() + 10), b(all.begin() + 10, all.end());
  b.emplace_back("model.rotary_emb.inv_freq", torch::ones({8}));  // ignored, as HF does
  grm::engine::save_safetensors(d + "/model-00001-of-00002.safetensors", a);
  grm::engine::save_safetensors(d + "/model-00002-of-00002.safetensors", b);
  nlohmann::json map;
  for (auto& [n, t] : a) map[n] = "model-00001-of-00002.safetensors";
  for (auto& [n, t] : b) map[n] = "model-00002-of-00002.safetensors";
  std::ofstream(d + "/model.safetensors.index.json") << nlohmann::json{{"metadata", {}}, {"weight_map", map}}.dump();
  auto loaded = grm::engine::load_model(d);
  EXPECT_TRUE(torch::equal(logits(*m), logits(*loaded)));
  // A weight_map entry pointing at a shard without that tensor is an error naming the shard.
  map["model.norm.weight"] = "model-00001-of-00002.safetensors";
  std::ofstream(d + "/model.safetensors.index.json") << nlohmann::json{{"weight_map", map}}.dump();
  const std::string err = load_error(d);
  EXPECT_NE(err.find("model-00001-of-00002.safetensors"), std::string::npos) << err;
  EXPECT_NE(err.find("model.norm.weight"), std::string::npos) << err;
}

TEST_F(ModelWeights, MissingTensorIsNamed) {
  auto m = model("tiny-llama.json");
  const auto d = saved(*m, [](auto& t) {
    t.erase(std::remove_if(t.begin(), t.end(), [](auto& p) { return p.first == "model.layers.1.mlp.up_proj.weight"; }),
            t.end());
  });
  const std::string err = load_error(d);
  EXPECT_NE(err.find("model.safetensors"), std::string::npos) << err;
  EXPECT_NE(err.find("missing: model.layers.1.mlp.up_proj.weight"), std::string::npos) << err;
}

TEST_F(ModelWeights, UnexpectedTensorIsNamed) {
  auto m = model("tiny-llama.json");
  const auto d = saved(*m, [](auto& t) { t.emplace_back("model.layers.2.mlp.up_proj.weight", torch::zeros({2, 2})); });
  const std::string err = load_error(d);
  EXPECT_NE(err.find("unexpected: model.layers.2.mlp.up_proj.weight"), std::string::npos) << err;
  // An untied checkpoint's lm_head loaded with a config that ties embeddings is ignored (HF behaviour).
  auto q = model("tiny-qwen2.json");
  const auto dq = saved(*q, [](auto& t) { t.emplace_back("lm_head.weight", torch::zeros({300, 64})); });
  EXPECT_EQ(load_error(dq), "");
}

TEST_F(ModelWeights, WrongShapeAndDtypeAreNamed) {
  auto m = model("tiny-llama.json");
  auto d = saved(*m, [](auto& t) { t[1].second = torch::zeros({64, 63}); });
  std::string err = load_error(d);
  EXPECT_NE(err.find(m->named_weights()[1].first), std::string::npos) << err;
  EXPECT_NE(err.find("[64, 63]"), std::string::npos) << err;
  d = saved(*m, [](auto& t) { t[0].second = t[0].second.to(torch::kLong); });
  err = load_error(d);
  EXPECT_NE(err.find("I64"), std::string::npos) << err;
}

TEST_F(ModelWeights, CorruptOrTruncatedFilesAreErrorsNamingTheFile) {
  auto m = model("tiny-llama.json");
  const std::string d = (dir_ / "c").string();
  grm::engine::save_model(*m, d);
  const std::string f = d + "/model.safetensors";
  fs::resize_file(f, fs::file_size(f) - 100);
  std::string err = load_error(d);
  EXPECT_NE(err.find(f), std::string::npos) << err;
  std::ofstream(f, std::ios::trunc) << "garbage";
  err = load_error(d);
  EXPECT_NE(err.find(f), std::string::npos) << err;
  fs::remove(f);
  err = load_error(d);
  EXPECT_NE(err.find("no model weights"), std::string::npos) << err;
  std::ofstream(d + "/config.json", std::ios::trunc) << "{";
  err = load_error(d);
  EXPECT_NE(err.find(d + "/config.json"), std::string::npos) << err;
  EXPECT_NE(load_error((dir_ / "nope").string()), "");
}
