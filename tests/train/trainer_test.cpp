// The trainer: loss falls when overfitting a few examples; save/load of the state resumes exactly;
// checkpoints load with load_model.
#include "train/trainer.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "engine/cpu_dtype.h"
#include "engine/tokenizer.h"
#include "engine/weights.h"
#include "train/checkpoint.h"
#include "train/run.h"
#include "train_test_util.h"

using grm::train::Precision;
using grm::train::Trainer;
using grm::train::TrainOptions;

namespace {

TrainOptions small_options(Precision p, int64_t steps) {
  TrainOptions o;
  o.steps = steps;
  o.lr = 3e-3;
  o.warmup = 3;
  o.batch = 2;
  o.seq_len = 64;
  o.seed = 5;
  o.precision = p;
  return o;
}

std::unique_ptr<Trainer> make_trainer(Precision p, int64_t steps, uint64_t init_seed = 1, double lr = 3e-3) {
  auto data = std::make_shared<grm::train::ListSource>(train_test::toy_examples());
  auto o = small_options(p, steps);
  o.lr = lr;
  return std::make_unique<Trainer>(train_test::tiny_model(init_seed), train_test::byte_tokenizer(), data, o);
}

class TrainerByPrecision : public ::testing::TestWithParam<Precision> {};

}  // namespace

TEST_P(TrainerByPrecision, LossFallsWhenOverfittingFewExamples) {
  auto t = make_trainer(GetParam(), 30, 1, /*lr=*/1e-2);
  std::vector<double> losses;
  for (int i = 0; i < 30; ++i) losses.push_back(t->step().loss);
  const double first = (losses[0] + losses[1]) / 2, last = (losses[28] + losses[29]) / 2;
  EXPECT_GT(first, 4.5);  // ≈ ln 257 at init
  EXPECT_LT(last, 0.5 * first) << "first " << first << " last " << last;
}

TEST_P(TrainerByPrecision, ResumeGivesIdenticalLosses) {
  const std::string dir = train_test::temp_dir("resume");
  const std::string state = dir + "/state.safetensors";
  auto full = make_trainer(GetParam(), 8);
  std::vector<double> expected;
  for (int i = 0; i < 8; ++i) expected.push_back(full->step().loss);

  auto first = make_trainer(GetParam(), 8);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(first->step().loss, expected[static_cast<size_t>(i)]);
  first->save_state(state);
  first.reset();

  auto resumed = make_trainer(GetParam(), 8, /*init_seed=*/99);  // different init: the state must replace it
  resumed->load_state(state);
  EXPECT_EQ(resumed->steps_done(), 4);
  for (int i = 4; i < 8; ++i) EXPECT_EQ(resumed->step().loss, expected[static_cast<size_t>(i)]) << "step " << i + 1;
  // Same parameters, bit for bit, as the uninterrupted run.
  const auto a = full->model().named_weights(), b = resumed->model().named_weights();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i].second, b[i].second)) << a[i].first;
  std::filesystem::remove_all(dir);
}

INSTANTIATE_TEST_SUITE_P(Train, TrainerByPrecision, ::testing::Values(Precision::Fp32, Precision::Mixed),
                         [](const auto& info) { return grm::train::to_string(info.param); });

TEST(TrainTrainer, AutoPrecisionIsMixedOnlyWithNativeBf16) {
  EXPECT_EQ(grm::train::parse_precision("auto"),
            grm::engine::cpu_has_native_bf16() ? Precision::Mixed : Precision::Fp32);
  EXPECT_EQ(grm::train::parse_precision("fp32"), Precision::Fp32);
  EXPECT_EQ(grm::train::parse_precision("mixed"), Precision::Mixed);
  EXPECT_THROW(grm::train::parse_precision("fp8"), grm::Error);
}

TEST(TrainTrainer, ThreadsFollowWhereTheMatmulsRun) {
  using grm::train::train_threads;
  EXPECT_EQ(train_threads(0, Precision::Mixed, 2), 2);  // oneDNN bf16 matmuls use the intra-op threads
  EXPECT_EQ(train_threads(0, Precision::Mixed, 0), 1);
  EXPECT_EQ(train_threads(0, Precision::Fp32, 2), 1);   // fp32 matmuls use OpenBLAS's own threads
  EXPECT_EQ(train_threads(3, Precision::Fp32, 2), 3);   // an explicit --threads wins
  EXPECT_EQ(train_threads(1, Precision::Mixed, 8), 1);
}

TEST(TrainTrainer, MicroBatchesMatchTheFullBatch) {
  auto data = std::make_shared<grm::train::ListSource>(train_test::toy_examples());
  auto o = small_options(Precision::Fp32, 4);
  o.batch = 4;
  o.micro_batch = 0;
  Trainer whole(train_test::tiny_model(), train_test::byte_tokenizer(), data, o);
  o.micro_batch = 1;
  Trainer split(train_test::tiny_model(), train_test::byte_tokenizer(), data, o);
  for (int i = 0; i < 4; ++i) {
    const auto a = whole.step(), b = split.step();
    EXPECT_NEAR(a.loss, b.loss, 1e-5) << "step " << i + 1;
    EXPECT_NEAR(a.grad_norm, b.grad_norm, 1e-4) << "step " << i + 1;
    EXPECT_EQ(a.target_tokens, b.target_tokens);
  }
}

TEST(TrainTrainer, SkipsExamplesLongerThanSeqLen) {
  std::vector<grm::train::SftExample> ex = train_test::toy_examples();
  ex.push_back({std::string(200, 'x'), "y"});
  auto data = std::make_shared<grm::train::ListSource>(ex);
  auto o = small_options(Precision::Fp32, 3);
  o.batch = 5;
  Trainer t(train_test::tiny_model(), train_test::byte_tokenizer(), data, o);
  const auto st = t.step();
  EXPECT_EQ(st.skipped, 1);
  EXPECT_EQ(t.cursor(), 6u);
}

TEST(TrainCheckpoint, WritesALoadableModelDirectory) {
  const std::string dir = train_test::temp_dir("ckpt");
  auto t = make_trainer(Precision::Mixed, 2);
  t->step();
  grm::train::CheckpointSpec spec;
  spec.out_dir = dir + "/model";
  spec.tokenizer_json = train_test::byte_tokenizer()->to_json().dump();
  spec.template_text = grm::train::builtin_template_text("compact");
  spec.save_dtype = torch::kBFloat16;
  // A stale temp file from a killed run is cleaned up, and never mistaken for a checkpoint file.
  std::filesystem::create_directories(spec.out_dir);
  { std::ofstream(spec.out_dir + "/model.safetensors.tmp.12345") << "partial"; }
  grm::train::remove_stale_temp_files(spec.out_dir);
  EXPECT_FALSE(std::filesystem::exists(spec.out_dir + "/model.safetensors.tmp.12345"));
  grm::train::write_checkpoint(*t, spec, 1.5);

  for (const char* f : {"config.json", "model.safetensors", "tokenizer.json", "template.txt", "training.json",
                        "trainer_state.safetensors"})
    EXPECT_TRUE(std::filesystem::exists(spec.out_dir + "/" + f)) << f;
  auto loaded = grm::engine::load_model(spec.out_dir, torch::kFloat);
  const auto a = t->model().named_weights(), b = loaded->named_weights();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(torch::allclose(a[i].second, b[i].second, 1e-2, 1e-3)) << a[i].first;  // bf16 on disk
  auto tok = grm::engine::Tokenizer::load(spec.out_dir);
  EXPECT_EQ(tok->eos_id(), 256);
  const auto cfg = grm::engine::ModelConfig::load(spec.out_dir);
  EXPECT_EQ(cfg.torch_dtype, "bfloat16");
  // The state file of the checkpoint restores the trainer at step 1.
  auto again = make_trainer(Precision::Mixed, 2, 42);
  again->load_state(grm::train::state_path(spec));
  EXPECT_EQ(again->steps_done(), 1);
  EXPECT_EQ(again->step().loss, t->step().loss);
  std::filesystem::remove_all(dir);
}
