// Transformer: cached (prefill / extend / decode / fork) vs full-forward parity, batching, config validation.
#include "engine/model.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include <unistd.h>

#include "core/error.h"
#include "engine/config.h"
#include "engine/weights.h"

using grm::engine::KVCache;
using grm::engine::ModelConfig;
using grm::engine::Transformer;
using nlohmann::json;

namespace {

std::string config_path(const std::string& name) { return std::string(GRM_TEST_DATA) + "/configs/" + name; }

std::shared_ptr<Transformer> make_model(const std::string& config, c10::ScalarType dtype, uint64_t seed = 7) {
  auto m = std::make_shared<Transformer>(ModelConfig::load(config_path(config)), dtype);
  m->init_random(seed, 0.1);  // larger than 0.02 so attention is far from uniform
  return m;
}

torch::Tensor random_tokens(int64_t n, int64_t vocab, uint64_t seed) {
  auto gen = at::detail::createCPUGenerator(seed);
  return torch::randint(vocab, {n}, gen, torch::kLong);
}

double max_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat) - b.to(torch::kFloat)).abs().max().item<double>();
}

// Logits of the full sequence computed by forward() (no cache), [T, V].
torch::Tensor reference(Transformer& m, const torch::Tensor& seq) {
  torch::NoGradGuard g;
  return m.forward(seq.view({1, -1}))[0];
}

struct Param {
  const char* config;
  c10::ScalarType dtype;
  double tol;  // absolute for float32 throughout; else relative to max |reference logit| (at least 1)
  c10::ScalarType kv = c10::ScalarType::Undefined;  // KV cache dtype; Undefined: the compute dtype
};

double error(const Param& p, const torch::Tensor& got, const torch::Tensor& ref) {
  const double d = max_diff(got, ref);
  if (p.dtype == torch::kFloat && p.kv == c10::ScalarType::Undefined) return d;
  return d / std::max(1.0, ref.abs().max().item<double>());
}

std::shared_ptr<Transformer> make_model(const Param& p) {
  auto m = make_model(p.config, p.dtype);
  if (p.kv != c10::ScalarType::Undefined) m->set_kv_dtype(p.kv);
  return m;
}

class ModelParity : public ::testing::TestWithParam<Param> {};

}  // namespace

TEST(ModelConfig, ParsesTinyConfigs) {
  const ModelConfig l = ModelConfig::load(config_path("tiny-llama.json"));
  EXPECT_EQ(l.arch, grm::engine::Arch::Llama);
  EXPECT_EQ(l.head_dim, 16);
  EXPECT_EQ(l.num_key_value_heads, 2);
  EXPECT_FALSE(l.attention_bias);
  EXPECT_FALSE(l.tie_word_embeddings);
  EXPECT_EQ(l.eos_token_ids, (std::vector<int64_t>{256}));
  EXPECT_FALSE(l.bos_token_id.has_value());
  const ModelConfig q = ModelConfig::load(config_path("tiny-qwen2.json"));
  EXPECT_EQ(q.arch, grm::engine::Arch::Qwen2);
  EXPECT_TRUE(q.attention_bias);
  EXPECT_TRUE(q.tie_word_embeddings);
  EXPECT_EQ(q.num_kv_groups(), 4);
  EXPECT_EQ(q.torch_dtype, "bfloat16");
  // Round trip keeps unknown keys.
  json j = q.to_json();
  EXPECT_EQ(j["use_sliding_window"], false);
  const ModelConfig q2 = ModelConfig::from_json(j, "round-trip");
  EXPECT_EQ(q2.to_json(), j);
}

TEST(ModelConfig, ValidationErrorsNameFileAndField) {
  const json base = ModelConfig::load(config_path("tiny-llama.json")).to_json();
  auto expect_error = [&](json j, const std::string& field) {
    try {
      ModelConfig::from_json(j, "some/config.json");
      ADD_FAILURE() << "no error for " << field;
    } catch (const grm::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("some/config.json"), std::string::npos) << msg;
      EXPECT_NE(msg.find(field), std::string::npos) << msg;
    }
  };
  json j = base; j.erase("hidden_size"); expect_error(j, "hidden_size");
  j = base; j["num_key_value_heads"] = 3; expect_error(j, "num_key_value_heads");
  j = base; j["architectures"] = {"GPT2LMHeadModel"}; expect_error(j, "architectures");
  j = base; j["eos_token_id"] = 300; expect_error(j, "eos_token_id");
  j = base; j["vocab_size"] = "300"; expect_error(j, "vocab_size");
  j = base; j["rms_norm_eps"] = 0; expect_error(j, "rms_norm_eps");
  j = base; j["head_dim"] = 15; expect_error(j, "head_dim");
  j = base; j["torch_dtype"] = "int8"; expect_error(j, "torch_dtype");
  j = base; j["hidden_act"] = "relu"; expect_error(j, "hidden_act");
  j = base; j["rope_scaling"] = {{"rope_type", "yarn"}}; expect_error(j, "rope_scaling");
  j = base; j["tie_word_embeddings"] = 1; expect_error(j, "tie_word_embeddings");
  j = base; j["mlp_bias"] = true; expect_error(j, "mlp_bias");
  j = base; j["num_hidden_layers"] = 0; expect_error(j, "num_hidden_layers");
  j = base; j["eos_token_id"] = {1, 2}; j["head_dim"] = 32;
  EXPECT_EQ(ModelConfig::from_json(j).eos_token_ids.size(), 2u);  // explicit head_dim ≠ hidden/heads is fine
  EXPECT_THROW(ModelConfig::load(config_path("does-not-exist.json")), grm::Error);
}

TEST(Model, ParameterNamesFollowHuggingFace) {
  auto llama = make_model("tiny-llama.json", torch::kFloat);
  auto qwen = make_model("tiny-qwen2.json", torch::kFloat);
  std::set<std::string> ln, qn;
  for (auto& [n, p] : llama->named_weights()) ln.insert(n);
  for (auto& [n, p] : qwen->named_weights()) qn.insert(n);
  for (const char* n : {"model.embed_tokens.weight", "model.layers.0.self_attn.q_proj.weight",
                        "model.layers.1.self_attn.o_proj.weight", "model.layers.1.mlp.gate_proj.weight",
                        "model.layers.0.mlp.down_proj.weight", "model.layers.0.input_layernorm.weight",
                        "model.layers.1.post_attention_layernorm.weight", "model.norm.weight"}) {
    EXPECT_TRUE(ln.count(n)) << n;
    EXPECT_TRUE(qn.count(n)) << n;
  }
  EXPECT_TRUE(ln.count("lm_head.weight"));
  EXPECT_FALSE(qn.count("lm_head.weight"));
  EXPECT_FALSE(ln.count("model.layers.0.self_attn.q_proj.bias"));
  EXPECT_TRUE(qn.count("model.layers.0.self_attn.v_proj.bias"));
  EXPECT_FALSE(qn.count("model.layers.0.self_attn.o_proj.bias"));
  EXPECT_EQ(ln.size(), 1 + 2 * 9 + 1 + 1u);
  EXPECT_EQ(qn.size(), 1 + 2 * 12 + 1u);
}

TEST(Model, InitIsDeterministic) {
  auto a = make_model("tiny-llama.json", torch::kFloat, 1);
  auto b = make_model("tiny-llama.json", torch::kFloat, 1);
  auto c = make_model("tiny-llama.json", torch::kFloat, 2);
  auto bf = make_model("tiny-llama.json", torch::kBFloat16, 1);
  auto wa = a->named_weights(), wb = b->named_weights(), wc = c->named_weights(), wf = bf->named_weights();
  for (size_t i = 0; i < wa.size(); ++i) {
    EXPECT_TRUE(torch::equal(wa[i].second, wb[i].second)) << wa[i].first;
    EXPECT_TRUE(torch::equal(wa[i].second.to(torch::kBFloat16), wf[i].second)) << wa[i].first;
  }
  EXPECT_FALSE(torch::equal(wa[0].second, wc[0].second));
}

TEST(Model, ForwardIsDifferentiable) {
  auto m = make_model("tiny-qwen2.json", torch::kFloat);
  const auto tokens = random_tokens(10, 300, 3).view({2, 5});
  const auto logits = m->forward(tokens);
  EXPECT_EQ(logits.sizes(), (std::vector<int64_t>{2, 5, 300}));
  auto loss = torch::nn::functional::cross_entropy(logits.view({-1, 300}), tokens.view({-1}));
  loss.backward();
  for (auto& [n, p] : m->named_weights()) {
    ASSERT_TRUE(p.grad().defined()) << n;
    EXPECT_GT(p.grad().abs().sum().item<double>(), 0.0) << n;
  }
  EXPECT_THROW(m->forward(torch::full({1, 2}, 300, torch::kLong)), grm::Error);
  EXPECT_THROW(m->forward(torch::zeros({1, 2}, torch::kInt)), grm::Error);
}

TEST(Model, FusedInferenceProjectionsMatchSeparateParameters) {
  auto m = make_model("tiny-qwen2.json", torch::kFloat);
  const auto tokens = random_tokens(12, 300, 8).view({2, 6});
  const auto with_grad = m->forward(tokens).detach();  // separate q/k/v, gate/up layers
  torch::Tensor fused;
  {
    torch::NoGradGuard g;  // one fused matmul per group
    fused = m->forward(tokens);
  }
  EXPECT_LT(max_diff(with_grad, fused), 1e-5);
  // An optimizer-style in-place update is seen by the fused path (the parameters are views of its storage).
  {
    torch::NoGradGuard g;
    for (auto& [n, p] : m->named_weights())
      if (n.find("k_proj") != std::string::npos || n.find("up_proj") != std::string::npos) p.mul_(1.5);
  }
  const auto updated = m->forward(tokens).detach();
  EXPECT_GT(max_diff(updated, with_grad), 1e-3);
  {
    torch::NoGradGuard g;
    EXPECT_LT(max_diff(updated, m->forward(tokens)), 1e-5);
  }
  // A parameter replaced by new storage (e.g. Module::to) makes inference fall back to the separate layers.
  for (auto& [n, p] : m->named_weights())
    if (n == "model.layers.0.self_attn.q_proj.weight") p.set_data(p.detach().clone() * 2);
  const auto replaced = m->forward(tokens).detach();
  EXPECT_GT(max_diff(replaced, updated), 1e-3);
  torch::NoGradGuard g;
  EXPECT_LT(max_diff(replaced, m->forward(tokens)), 1e-5);
}

// Inference stores float32 linear weights transposed (a layout OpenBLAS multiplies faster): same values,
// same outputs, the fused projections still read the parameters, and checkpoints still round-trip.
TEST(Model, TransposedWeightStorageKeepsValuesAndOutputs) {
  for (const char* config : {"tiny-llama.json", "tiny-qwen2.json"}) {  // untied lm_head; q/k/v bias and GQA
    SCOPED_TRACE(config);
    auto m = make_model(config, torch::kFloat);
    const auto tokens = random_tokens(16, 300, 9).view({2, 8});
    torch::NoGradGuard g;
    const auto before = m->forward(tokens);
    std::map<std::string, torch::Tensor> values;
    for (const auto& [n, p] : m->named_weights()) values[n] = p.clone();
    m->store_linear_weights_transposed();
    int transposed = 0;
    for (const auto& [n, p] : m->named_weights()) {
      EXPECT_TRUE(torch::equal(p, values.at(n))) << n;
      const bool linear = n.find("_proj.weight") != std::string::npos || n == "lm_head.weight";
      if (linear) {
        EXPECT_EQ(p.stride(0), 1) << n;  // column-major
        ++transposed;
      } else {
        EXPECT_TRUE(p.is_contiguous()) << n;
      }
    }
    EXPECT_EQ(transposed, 2 * 7 + (std::string(config) == "tiny-llama.json" ? 1 : 0));
    std::map<std::string, const void*> storage;
    for (const auto& [n, p] : m->named_weights()) storage[n] = p.storage().data();
    const std::string l0 = "model.layers.0.";
    EXPECT_EQ(storage.at(l0 + "self_attn.q_proj.weight"), storage.at(l0 + "self_attn.v_proj.weight"));
    EXPECT_EQ(storage.at(l0 + "mlp.gate_proj.weight"), storage.at(l0 + "mlp.up_proj.weight"));
    EXPECT_LT(max_diff(before, m->forward(tokens)), 1e-5);
    // The fused q/k/v and gate/up products still see the parameters: update some in place, compare with the
    // separate layers (the path taken with gradients on).
    for (auto& [n, p] : m->named_weights())
      if (n.find("v_proj.weight") != std::string::npos || n.find("gate_proj") != std::string::npos) p.mul_(1.5);
    const auto fused = m->forward(tokens);
    EXPECT_GT(max_diff(fused, before), 1e-3);
    torch::Tensor separate;
    {
      torch::AutoGradMode on(true);
      separate = m->forward(tokens).detach();
    }
    EXPECT_LT(max_diff(fused, separate), 1e-5);
    // Cached decoding agrees with the full pass, and a saved checkpoint loads with the same values.
    KVCache cache = m->make_cache(1, 16);
    m->prefill(tokens[0].narrow(0, 0, 5).view({1, 5}), {5}, cache, {0});
    for (int64_t t = 5; t < 8; ++t) {
      const auto step = m->decode(tokens[0].narrow(0, t, 1), cache, {0});
      EXPECT_LT(max_diff(step[0], fused[0][t]), 1e-4) << "position " << t;
    }
    const std::string dir = ::testing::TempDir() + "/grm_transposed_" + std::to_string(::getpid());
    grm::engine::save_model(*m, dir);
    const auto loaded = grm::engine::load_model(dir, torch::kFloat);
    const auto a = m->named_weights(), b = loaded->named_weights();
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
    std::filesystem::remove_all(dir);
  }
}

// Packed copies of the linear weights (what LocalGenerator::open sets up on AVX2 CPUs): the same outputs as
// the plain weights in full passes (prefill-sized products) and cached decoding, whether the weights were
// transposed first or not, the tied embedding's logits included; a weight changed after packing is read
// from the parameter again.
TEST(Model, PackedWeightsKeepOutputs) {
  if (!grm::engine::packed_kernel_available()) GTEST_SKIP() << "no AVX2: nothing is packed";
  for (const char* config : {"tiny-llama.json", "tiny-qwen2.json"})
    for (bool transposed : {false, true}) {
      SCOPED_TRACE(std::string(config) + (transposed ? " transposed" : ""));
      auto m = make_model(config, torch::kFloat);
      auto bf = make_model(config, torch::kBFloat16);
      EXPECT_FALSE(bf->pack_linear_weights()) << "bf16 compute is not packed";
      const auto tokens = random_tokens(16, 300, 9).view({2, 8});
      torch::NoGradGuard g;
      const auto before = m->forward(tokens);
      if (transposed) m->store_linear_weights_transposed();
      ASSERT_TRUE(m->pack_linear_weights());
      EXPECT_LT(max_diff(before, m->forward(tokens)), 1e-5);
      KVCache cache = m->make_cache(2, 16);
      m->prefill(tokens.narrow(1, 0, 5), {5, 5}, cache, {0, 1});
      for (int64_t t = 5; t < 8; ++t) {
        const auto step = m->decode(tokens.select(1, t).contiguous(), cache, {0, 1});
        EXPECT_LT(max_diff(step, before.select(1, t)), 1e-4) << "position " << t;
      }
      const bool tied = std::string(config) == "tiny-qwen2.json";  // its head is the embedding: that copy too
      for (auto& [n, p] : m->named_weights())
        if (n.find("o_proj.weight") != std::string::npos || n.find("up_proj") != std::string::npos ||
            (tied && n == "model.embed_tokens.weight"))
          p.mul_(1.5);
      const auto changed = m->forward(tokens);
      EXPECT_GT(max_diff(changed, before), 1e-3);
      torch::Tensor separate;
      {
        torch::AutoGradMode on(true);  // the separate parameters through at::linear
        separate = m->forward(tokens).detach();
      }
      EXPECT_LT(max_diff(changed, separate), 1e-5);
    }
}

// Releasing the originals after packing (what LocalGenerator::open does): the same outputs to the bit in full
// passes and cached decoding, for float32 panels and for bfloat16 ones (weights rounded to bfloat16 values
// first, as a bfloat16 checkpoint's are), tied (the lookup then reads the head's packed copy) and untied heads;
// the parameter count is kept, and named_weights() refuses (the parameters are empty).
TEST(Model, ReleasedOriginalsKeepOutputs) {
  if (!grm::engine::packed_kernel_available()) GTEST_SKIP() << "no AVX2: nothing is packed";
  for (const char* config : {"tiny-llama.json", "tiny-qwen2.json"})
    for (bool bf16_values : {false, true}) {
      SCOPED_TRACE(std::string(config) + (bf16_values ? " bfloat16 values" : ""));
      auto m = make_model(config, torch::kFloat);
      torch::NoGradGuard g;
      int64_t count = 0, kept = 0;  // kept: what release leaves (norms, biases, an untied model's embedding)
      const bool tied = std::string(config) == "tiny-qwen2.json";
      for (auto& [n, p] : m->named_weights()) {
        if (bf16_values) p.copy_(p.to(torch::kBFloat16).to(torch::kFloat));
        count += p.numel();
        const bool linear = n.find("_proj.weight") != std::string::npos || n == "lm_head.weight";
        if (!linear && !(tied && n == "model.embed_tokens.weight")) kept += p.numel();
      }
      EXPECT_EQ(m->parameter_count(), count);
      EXPECT_FALSE(m->release_packed_originals()) << "nothing packed yet";
      ASSERT_TRUE(m->pack_linear_weights());
      const auto tokens = random_tokens(16, 300, 9).view({2, 8});
      const auto before = m->forward(tokens);
      KVCache cache = m->make_cache(2, 16);
      m->prefill(tokens.narrow(1, 0, 5), {5, 5}, cache, {0, 1});
      const auto step_before = m->decode(tokens.select(1, 5).contiguous(), cache, {0, 1});
      ASSERT_TRUE(m->release_packed_originals());
      EXPECT_TRUE(m->originals_released());
      EXPECT_TRUE(torch::equal(m->forward(tokens), before));
      KVCache again = m->make_cache(2, 16);
      m->prefill(tokens.narrow(1, 0, 5), {5, 5}, again, {0, 1});
      EXPECT_TRUE(torch::equal(m->decode(tokens.select(1, 5).contiguous(), again, {0, 1}), step_before));
      EXPECT_EQ(m->parameter_count(), count);
      EXPECT_THROW(m->named_weights(), grm::Error);
      int64_t left = 0;
      for (const auto& p : m->parameters()) left += p.numel();
      EXPECT_EQ(left, kept) << "the linear weights' values (and a tied embedding's) are gone";
    }
}

TEST(Model, RightPaddingOnlyAffectsLaterPositions) {
  auto m = make_model("tiny-llama.json", torch::kFloat);
  const auto seq = random_tokens(9, 300, 4);
  torch::NoGradGuard g;
  auto padded = torch::zeros({2, 14}, torch::kLong);
  padded[0].narrow(0, 0, 9).copy_(seq);
  padded[1].copy_(random_tokens(14, 300, 5));
  const auto logits = m->forward(padded);
  EXPECT_LT(max_diff(logits[0].narrow(0, 0, 9), reference(*m, seq)), 1e-5);
}

TEST_P(ModelParity, IncrementalDecodingMatchesForward) {
  const Param p = GetParam();
  auto m = make_model(p);
  const auto seq = random_tokens(20, 300, 11);
  const auto ref = reference(*m, seq);
  KVCache cache = m->make_cache(2, 32);
  const auto first = m->prefill(seq.narrow(0, 0, 6).view({1, 6}), {6}, cache, {1});
  EXPECT_EQ(first.scalar_type(), torch::kFloat);
  EXPECT_LT(error(p, first[0], ref[5]), p.tol);
  EXPECT_EQ(cache.length(1), 6);
  for (int64_t t = 6; t < 20; ++t) {
    const auto step = m->decode(seq.narrow(0, t, 1), cache, {1});
    ASSERT_EQ(step.sizes(), (std::vector<int64_t>{1, 300}));
    EXPECT_LT(error(p, step[0], ref[t]), p.tol) << "position " << t;
  }
  EXPECT_EQ(cache.length(1), 20);
  EXPECT_EQ(cache.length(0), 0);
}

TEST_P(ModelParity, Batch32OfDifferentLengthsMatchesSingles) {
  const Param p = GetParam();
  auto m = make_model(p);
  const int64_t B = 32, steps = 3;
  std::vector<torch::Tensor> seqs;
  std::vector<int64_t> lengths;
  int64_t T = 0;
  for (int64_t b = 0; b < B; ++b) {
    lengths.push_back(1 + (b * 7) % 23);
    seqs.push_back(random_tokens(lengths.back() + steps, 300, 100 + static_cast<uint64_t>(b)));
    T = std::max(T, lengths.back());
  }
  auto batch = torch::zeros({B, T}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) batch[b].narrow(0, 0, lengths[b]).copy_(seqs[b].narrow(0, 0, lengths[b]));
  // Contiguous slots (cache read in place), except decode step 1 which lists them reversed (gathered reads).
  std::vector<int> slots;
  for (int b = 0; b < B; ++b) slots.push_back(b);
  KVCache cache = m->make_cache(B, 32);
  auto out = m->prefill(batch, lengths, cache, slots);
  for (int64_t b = 0; b < B; ++b)
    EXPECT_LT(error(p, out[b], reference(*m, seqs[b]).select(0, lengths[b] - 1)), p.tol) << b;
  for (int64_t s = 0; s < steps; ++s) {
    std::vector<int64_t> toks;
    for (int64_t b = 0; b < B; ++b) toks.push_back(seqs[b][lengths[b] + s].item<int64_t>());
    std::vector<int> order = slots;
    if (s == 1) std::reverse(order.begin(), order.end());  // non-contiguous slot list
    std::vector<int64_t> ordered_toks;
    for (int slot : order) ordered_toks.push_back(toks[static_cast<size_t>(slot)]);
    out = m->decode(torch::tensor(ordered_toks, torch::kLong), cache, order);
    for (size_t i = 0; i < order.size(); ++i) {
      const int b = order[i];
      EXPECT_LT(error(p, out[static_cast<int64_t>(i)], reference(*m, seqs[b]).select(0, lengths[b] + s)), p.tol)
          << "row " << b << " step " << s;
    }
  }
}

TEST_P(ModelParity, ForkedPrefixMatchesSeparateComputation) {
  const Param p = GetParam();
  auto m = make_model(p);
  const auto prefix = random_tokens(9, 300, 21);
  KVCache cache = m->make_cache(6, 16);
  m->prefill(prefix.view({1, -1}), {9}, cache, {0});
  cache.fork(0, {2, 3, 4, 5});
  const auto next = torch::tensor(std::vector<int64_t>{5, 77, 123, 299}, torch::kLong);
  const auto after = torch::tensor(std::vector<int64_t>{1, 2, 3, 4}, torch::kLong);
  const auto first = m->decode(next, cache, {2, 3, 4, 5});
  const auto second = m->decode(after, cache, {2, 3, 4, 5});
  for (int64_t i = 0; i < 4; ++i) {
    const auto full = torch::cat({prefix, next.narrow(0, i, 1), after.narrow(0, i, 1)});
    const auto ref = reference(*m, full);
    EXPECT_LT(error(p, first[i], ref[9]), p.tol) << i;
    EXPECT_LT(error(p, second[i], ref[10]), p.tol) << i;
  }
  EXPECT_EQ(cache.length(0), 9);
  EXPECT_EQ(cache.length(5), 11);
}

TEST_P(ModelParity, ExtendAppendsSuffixesAfterPrefix) {
  const Param p = GetParam();
  auto m = make_model(p);
  const auto prefix = random_tokens(5, 300, 31);
  const auto s0 = random_tokens(4, 300, 32), s1 = random_tokens(2, 300, 33);
  KVCache cache = m->make_cache(3, 16);
  m->prefill(prefix.view({1, -1}), {5}, cache, {0});
  cache.fork(0, {1, 2});
  auto suffixes = torch::zeros({2, 4}, torch::kLong);
  suffixes[0].copy_(s0);
  suffixes[1].narrow(0, 0, 2).copy_(s1);
  const auto out = m->extend(suffixes, {4, 2}, cache, {2, 1});
  EXPECT_LT(error(p, out[0], reference(*m, torch::cat({prefix, s0}))[8]), p.tol);
  EXPECT_LT(error(p, out[1], reference(*m, torch::cat({prefix, s1}))[6]), p.tol);
  EXPECT_EQ(cache.lengths(), (std::vector<int64_t>{5, 7, 9}));
  // Decoding continues correctly after a padded extend (the padded rows wrote nothing).
  const auto d = m->decode(torch::tensor(std::vector<int64_t>{42}, torch::kLong), cache, {1});
  const auto full = torch::cat({prefix, s1, torch::tensor(std::vector<int64_t>{42}, torch::kLong)});
  EXPECT_LT(error(p, d[0], reference(*m, full)[7]), p.tol);
}

TEST_P(ModelParity, SplitPrefillMatchesReference) {
  const Param p = GetParam();
  auto m = make_model(p);
  m->set_max_score_elements(600);  // forces row groups and position chunks on these tiny inputs
  const std::vector<int64_t> lengths{3, 17, 1, 9, 30};
  const int64_t B = static_cast<int64_t>(lengths.size());
  std::vector<torch::Tensor> seqs;
  auto batch = torch::zeros({B, 30}, torch::kLong);
  for (int64_t b = 0; b < B; ++b) {
    seqs.push_back(random_tokens(lengths[b] + 1, 300, 50 + static_cast<uint64_t>(b)));
    batch[b].narrow(0, 0, lengths[b]).copy_(seqs[b].narrow(0, 0, lengths[b]));
  }
  KVCache cache = m->make_cache(B + 1, 40);
  m->prefill(torch::zeros({1, 4}, torch::kLong), {4}, cache, {4});  // stale content in a reused slot
  const auto out = m->prefill(batch, lengths, cache, {1, 0, 2, 4, 3});
  std::vector<int64_t> next;
  for (int64_t b = 0; b < B; ++b) {
    EXPECT_LT(error(p, out[b], reference(*m, seqs[b])[lengths[b] - 1]), p.tol) << b;
    next.push_back(seqs[b][lengths[b]].item<int64_t>());
  }
  const auto step = m->decode(torch::tensor(next, torch::kLong), cache, {1, 0, 2, 4, 3});
  for (int64_t b = 0; b < B; ++b) EXPECT_LT(error(p, step[b], reference(*m, seqs[b])[lengths[b]]), p.tol) << b;
  EXPECT_EQ(cache.lengths(), (std::vector<int64_t>{18, 4, 2, 31, 10, 0}));
}

INSTANTIATE_TEST_SUITE_P(Model, ModelParity,
                         ::testing::Values(Param{"tiny-llama.json", torch::kFloat, 1e-4},
                                           Param{"tiny-qwen2.json", torch::kFloat, 1e-4},
                                           Param{"tiny-llama.json", torch::kBFloat16, 3e-2},
                                           Param{"tiny-qwen2.json", torch::kBFloat16, 3e-2},
                                           // float32 compute over a float16 cache (the default on AVX2 CPUs)
                                           Param{"tiny-llama.json", torch::kFloat, 2e-3, torch::kHalf},
                                           Param{"tiny-qwen2.json", torch::kFloat, 2e-3, torch::kHalf},
                                           // other pairs of compute and storage dtype
                                           Param{"tiny-llama.json", torch::kBFloat16, 3e-2, torch::kHalf},
                                           Param{"tiny-qwen2.json", torch::kFloat, 2e-2, torch::kBFloat16}),
                         [](const auto& info) {
                           std::string n = info.param.config;
                           n = n.substr(5, n.find('.') - 5);
                           n += info.param.dtype == torch::kFloat ? "_f32" : "_bf16";
                           if (info.param.kv == torch::kHalf) n += "_kv_f16";
                           if (info.param.kv == torch::kBFloat16) n += "_kv_bf16";
                           return n;
                         });

TEST(Model, SlidingWindowMatchesForward) {
  json j = ModelConfig::load(config_path("tiny-llama.json")).to_json();
  j["architectures"] = {"MistralForCausalLM"};
  j["sliding_window"] = 4;
  Transformer m(ModelConfig::from_json(j), torch::kFloat);
  m.init_random(5, 0.1);
  const auto seq = random_tokens(12, 300, 6);
  const auto ref = reference(m, seq);
  Transformer full(ModelConfig::load(config_path("tiny-llama.json")), torch::kFloat);
  full.init_random(5, 0.1);
  EXPECT_GT(max_diff(ref[11], reference(full, seq)[11]), 1e-3);  // the window matters
  EXPECT_LT(max_diff(ref[3], reference(full, seq)[3]), 1e-5);     // ... only beyond its size
  KVCache cache = m.make_cache(1, 12);
  m.prefill(seq.narrow(0, 0, 7).view({1, 7}), {7}, cache, {0});
  for (int64_t t = 7; t < 12; ++t)
    EXPECT_LT(max_diff(m.decode(seq.narrow(0, t, 1), cache, {0})[0], ref[t]), 1e-4);
}

TEST(Model, CachedCallsRejectBadArguments) {
  auto m = make_model("tiny-llama.json", torch::kFloat);
  KVCache cache = m->make_cache(2, 4);
  const auto toks = torch::zeros({2, 3}, torch::kLong);
  EXPECT_THROW(m->prefill(toks, {3}, cache, {0, 1}), grm::Error);        // lengths size
  EXPECT_THROW(m->prefill(toks, {3, 4}, cache, {0, 1}), grm::Error);     // length > T
  EXPECT_THROW(m->prefill(toks, {3, 3}, cache, {0, 0}), grm::Error);     // duplicate slot
  EXPECT_THROW(m->prefill(toks, {3, 3}, cache, {0, 2}), grm::Error);     // slot range
  m->prefill(toks, {3, 3}, cache, {0, 1});
  m->decode(torch::zeros({2}, torch::kLong), cache, {0, 1});
  EXPECT_THROW(m->decode(torch::zeros({2}, torch::kLong), cache, {0, 1}), grm::Error);  // capacity
  ModelConfig deeper = m->config();
  deeper.num_hidden_layers += 1;
  KVCache other = KVCache::create(deeper, 1, 4);
  EXPECT_THROW(m->prefill(toks.narrow(0, 0, 1), {3}, other, {0}), grm::Error);  // geometry mismatch
  EXPECT_THROW(m->set_kv_dtype(torch::kInt), grm::Error);
  EXPECT_THROW(m->decode(torch::full({1}, 300, torch::kLong), cache, {0}), grm::Error);
}
