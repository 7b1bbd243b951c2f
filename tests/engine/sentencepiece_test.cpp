// SentencePieceTokenizer: models trained here with libsentencepiece (through the grm_spm module), lossless
// round trips, the switched-off dummy prefix, literal control tokens, byte pieces, Tokenizer::load.
#include "engine/sentencepiece_tokenizer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "core/error.h"

namespace fs = std::filesystem;
using grm::engine::SentencePieceTokenizer;
using grm::engine::Tokenizer;

namespace {

fs::path scratch() {
  static const fs::path dir = [] {
    fs::path d = fs::temp_directory_path() / ("grm_spm_test_" + std::to_string(::getpid()));
    fs::create_directories(d);
    return d;
  }();
  return dir;
}

// Removes the scratch directory after the last test.
class ScratchCleanup : public ::testing::Environment {
 public:
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(fs::temp_directory_path() / ("grm_spm_test_" + std::to_string(::getpid())), ec);
  }
};
[[maybe_unused]] ::testing::Environment* const kCleanup = ::testing::AddGlobalTestEnvironment(new ScratchCleanup);

// Trains once per configuration; returns the .model path.
std::string train_model(const std::string& name, const std::string& extra_args) {
  const fs::path corpus = scratch() / "corpus.txt";
  if (!fs::exists(corpus)) {
    std::ofstream out(corpus);
    static const char* lines[] = {
        "The quick brown fox jumps over the lazy dog.",
        "Response 1 is more helpful than Response 2 because it answers the question directly.",
        "Specific Criteria: accuracy, clarity, completeness. Scores: \\boxed{7, 3}",
        "It's a truth universally acknowledged that we'll need more data.",
        "def score(x):\n    return 2 * x + 1",
        "你好，世界！这是一个测试。",
        "Привет, мир! Как дела?",
        "café naïve über Straße — “quotes” and ‘apostrophes’",
        "Numbers: 1234567890, 3.14159, 2024-11-27."};
    for (int i = 0; i < 200; ++i) out << lines[i % std::size(lines)] << " " << i << "\n";
  }
  const fs::path prefix = scratch() / name;
  if (!fs::exists(prefix.string() + ".model"))
    SentencePieceTokenizer::train("--input=" + corpus.string() + " --model_prefix=" + prefix.string() +
                                  " --vocab_size=600 --character_coverage=1.0 --hard_vocab_limit=false --byte_fallback=true"
                                  " --minloglevel=2 " + extra_args);
  return prefix.string() + ".model";
}

const std::string& bpe_identity_path() {
  static const std::string p = train_model("bpe_identity", "--model_type=bpe --normalization_rule_name=identity "
                                                           "--user_defined_symbols=<start_of_turn>,<end_of_turn>");
  return p;
}

const SentencePieceTokenizer& bpe_identity() {
  static const SentencePieceTokenizer t = SentencePieceTokenizer::from_file(bpe_identity_path());
  return t;
}

void expect_round_trip(const Tokenizer& t, const std::string& s) {
  EXPECT_EQ(t.decode(t.encode(s)), s) << "input of " << s.size() << " bytes: " << s;
}

const std::vector<std::string> kStrings = {
    "Hello world",
    " leading space",
    "   three leading, two  inside,   three trailing   ",
    "tabs\tand\nnewlines\n\n",
    "Response 1 is more helpful than Response 2.",
    "你好，世界！ 未知的字符 龘",
    "emoji 😀🎉 🤗",
    "<s>bos and eos</s> and <unk> and <pad>",
    "<start_of_turn>user\nhi<end_of_turn>\n",
    "invalid \xff\xfe bytes \xc3( \xed\xa0\x80",
    "a literal \xe2\x96\x81 lower one eighth block",
    "",
    " ",
};

TEST(SentencePieceTest, LoadsTrainedModel) {
  const auto& t = bpe_identity();
  EXPECT_EQ(t.vocab_size(), 600);
  EXPECT_EQ(t.normalizer_name(), "identity");
  EXPECT_TRUE(t.adds_dummy_prefix());
  EXPECT_EQ(t.token_to_id("<unk>"), 0);
  EXPECT_EQ(t.bos_id(), 1);
  EXPECT_EQ(t.eos_id(), 2);
  EXPECT_EQ(t.token_to_id("no such piece"), std::nullopt);
  EXPECT_THROW(t.token_bytes(600), grm::Error);
  ASSERT_TRUE(t.token_to_id("<0x0A>"));
  EXPECT_EQ(t.token_bytes(*t.token_to_id("<0x0A>")), "\n");
  EXPECT_EQ(t.token_bytes(*t.token_to_id("<0xFF>")), "\xff");
  EXPECT_EQ(t.token_bytes(1), "<s>");
}

TEST(SentencePieceTest, RoundTripsExactly) {
  const auto& t = bpe_identity();
  for (const auto& s : kStrings) expect_round_trip(t, s);
  std::mt19937 rng(3);
  static const char* parts[] = {" ", "  ", "\n", "the", "Response", "é", "你好", "😀", "<s>", "</s>", "\xe2\x96\x81"};
  for (int i = 0; i < 300; ++i) {
    std::string s;
    for (int k = static_cast<int>(rng() % 16); k > 0; --k)
      s += rng() % 3 == 0 ? std::string(1, static_cast<char>(rng() % 256)) : parts[rng() % std::size(parts)];
    expect_round_trip(t, s);
  }
}

TEST(SentencePieceTest, ConcurrentEncoding) {
  const auto& t = bpe_identity();
  std::vector<std::vector<int>> expect;
  for (const auto& s : kStrings) expect.push_back(t.encode(s));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (int rep = 0; rep < 50; ++rep)
        for (size_t i = 0; i < kStrings.size(); ++i) mismatches[k] += t.encode(kStrings[i]) != expect[i];
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(SentencePieceTest, NoDummyPrefixAndLiteralControlTokens) {
  const auto& t = bpe_identity();
  auto ids = t.encode("Hello");
  ASSERT_FALSE(ids.empty());
  EXPECT_NE(t.token_bytes(ids[0])[0], ' ');  // no dummy prefix
  ids = t.encode(" Hello");
  EXPECT_EQ(t.token_bytes(ids[0])[0], ' ');  // the model's start-of-text form: encode(" " + text)
  ids = t.encode("<s>x</s>");
  EXPECT_EQ(ids.front(), 1);
  EXPECT_EQ(ids.back(), 2);
  ids = t.encode("<start_of_turn>");
  EXPECT_EQ(ids, (std::vector<int>{*t.token_to_id("<start_of_turn>")}));
  // Characters outside the vocabulary fall back to bytes.
  const std::string rare = "龘";
  ids = t.encode(rare);
  EXPECT_EQ(ids.size(), 3u);
}

TEST(SentencePieceTest, UnigramWithDefaultNormalizer) {
  auto t = SentencePieceTokenizer::from_file(train_model("unigram_nfkc", "--model_type=unigram"));
  EXPECT_EQ(t.normalizer_name(), "nmt_nfkc");
  // Text NFKC leaves alone round trips, spaces included (whitespace squeezing is off).
  for (const std::string s : {"Hello world", "  two  spaces  ", "Response 1, Response 2", "你好"}) expect_round_trip(t, s);
  // Documented limit: what the normalizer rewrites (nmt_nfkc turns newlines into spaces) does not.
  EXPECT_EQ(t.decode(t.encode("a\nb")), "a b");
}

TEST(SentencePieceTest, LoadFindsTokenizerModel) {
  const fs::path dir = scratch() / "model_dir";
  fs::create_directories(dir);
  fs::copy_file(bpe_identity_path(), dir / "tokenizer.model", fs::copy_options::overwrite_existing);
  auto t = Tokenizer::load(dir.string());
  EXPECT_EQ(t->vocab_size(), 600);
  EXPECT_EQ(t->encode("Hello world"), bpe_identity().encode("Hello world"));
  // A non-byte-level tokenizer.json next to it (as Gemma ships) falls back to the .model.
  std::ofstream(dir / "tokenizer.json") << R"({"model": {"type": "Unigram", "vocab": []}})";
  EXPECT_EQ(Tokenizer::load(dir.string())->vocab_size(), 600);
}

TEST(SentencePieceTest, RejectsBadFiles) {
  EXPECT_THROW(SentencePieceTokenizer::from_file((scratch() / "missing.model").string()), grm::Error);
  const fs::path junk = scratch() / "junk.model";
  std::ofstream(junk) << "this is not a protobuf \xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff";
  try {
    SentencePieceTokenizer::from_file(junk.string());
    ADD_FAILURE() << "junk accepted";
  } catch (const grm::Error& e) {
    EXPECT_EQ(std::string(e.what()).rfind(junk.string(), 0), 0u) << e.what();
  }
  EXPECT_THROW(SentencePieceTokenizer::train("--input=/nonexistent --model_prefix=/tmp/x --vocab_size=10"), grm::Error);
}

}  // namespace
