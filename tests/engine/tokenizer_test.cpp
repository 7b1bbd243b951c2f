// Byte-level BPE: training, save/load, round trips (including invalid UTF-8), errors, Tokenizer::load,
// and id-for-id parity with @huggingface/tokenizers (tools/node/tokenize.js) on several configurations.
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "core/error.h"
#include "core/utf8.h"
#include "engine/bpe.h"
#include "engine/tokenizer.h"

namespace fs = std::filesystem;
using grm::engine::BpeTokenizer;
using grm::engine::Tokenizer;
using json = nlohmann::json;

namespace {

const std::vector<std::string> kSpecials = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};

// A deterministic corpus: pseudo-sentences over a fixed word list plus multilingual and code lines.
std::vector<std::string> corpus() {
  static const char* words[] = {
      "the", "a", "of", "and", "to", "in", "is", "it", "that", "for", "was", "on", "are", "with", "as", "I",
      "his", "they", "be", "at", "one", "have", "this", "from", "or", "had", "by", "word", "but", "what",
      "some", "we", "can", "out", "other", "were", "all", "there", "when", "up", "use", "your", "how", "said",
      "an", "each", "she", "which", "do", "their", "time", "if", "will", "way", "about", "many", "then", "them",
      "write", "would", "like", "so", "these", "her", "long", "make", "thing", "see", "him", "two", "has",
      "look", "more", "day", "could", "go", "come", "did", "number", "sound", "no", "most", "people", "my",
      "response", "answer", "helpful", "score", "principle", "critique", "judgment", "reward", "model",
      "it's", "don't", "we'll", "they've", "I'm", "you'd", "café", "naïve", "über", "Straße", "2024", "3.14",
      "1000", "x", "y", "(a)", "[1]", "{k: v}", "->", "==", "!=", "https://example.com", "e.g.", "i.e."};
  static const char* extra[] = {"你好，世界！这是一个测试。", "日本語のテキストです。", "Привет, мир! Как дела?",
                                "مرحبا بالعالم", "emoji 😀🎉👍 🤗", "def f(x):\n    return x * 2\n",
                                "for (int i = 0; i < n; ++i) {\n\tsum += a[i];\n}", "Score: 7/10\n\nScore: 3/10"};
  std::vector<std::string> out;
  uint64_t state = 12345;
  const auto next = [&](uint64_t n) {
    state = state * 6364136223846793005ull + 1442695040888963407ull;
    return (state >> 33) % n;
  };
  for (int i = 0; i < 1500; ++i) {
    std::string line;
    const int n = 4 + static_cast<int>(next(12));
    for (int k = 0; k < n; ++k) {
      if (k) line += next(20) == 0 ? "  " : " ";
      line += words[next(std::size(words))];
    }
    line += ".?!,\n"[next(5)];
    if (next(6) == 0) line += extra[next(std::size(extra))];
    if (next(25) == 0) line += kSpecials[next(kSpecials.size())];
    out.push_back(std::move(line));
  }
  return out;
}

const BpeTokenizer& trained() {
  static const BpeTokenizer t = BpeTokenizer::train(corpus(), 600, kSpecials);
  return t;
}

std::vector<std::string> random_strings(int n, uint32_t seed, bool valid_only = false);

const std::vector<std::string>& parity_strings() {
  static const std::vector<std::string> s = [] {
    std::vector<std::string> v = {
      "Hello world",
      "Hello, world! How's it going? I'm fine, they'll see; we've done it. DON'T SHOUT, IT'S LOUD",
      "   leading spaces",
      "trailing spaces   ",
      "tabs\tand\nnewlines\n\n\nmany",
      "  \n  \n",
      " ",
      "numbers 1234567 3.14159 2024-11-27 ₹100 ½ ٣٤",
      "unicode café naïve über Straße",
      "中文字符测试 你好世界",
      "日本語 カタカナ ひらがな",
      "Привет, мир!",
      "مرحبا بالعالم",
      "emoji 😀🎉👍🏽 👨‍👩‍👧 🤗",
      "mixed<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
      "<|endoftext|>",
      "<|im_end|><|im_end|>x<|im_start|>",
      "code: for (int i = 0; i < n; ++i) { x += y[i]; }",
      "URL https://example.com/a?b=c&d=e#frag",
      "\u00a0non-breaking\u3000ideographic space",
      "odd spaces:\u0085next line\u2028line sep \ufeffbom\u180emongolian\u200bzero width\u2009thin  \u000b\u000cx",
      "a\r\nwindows\r\nlines",
      "x",
      "'s 's 'S 'LL 'Ve",
      "The quick brown fox jumps over the lazy dog. Score: 7/10\n\nScore: 3/10",
      "Response 1 is more helpful than Response 2 because it answers the question.",
    };
    const auto lines = corpus();
    v.insert(v.end(), lines.begin(), lines.begin() + 150);
    for (auto& r : random_strings(150, 5, /*valid_only=*/true)) v.push_back(std::move(r));
    return v;
  }();
  return s;
}

std::string tmp_path(const std::string& name) {
  return (fs::temp_directory_path() / ("grm_tok_" + std::to_string(::getpid()) + "_" + name)).string();
}

void write_file(const std::string& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

void expect_round_trip(const Tokenizer& t, const std::string& s) {
  const auto ids = t.encode(s);
  EXPECT_EQ(t.decode(ids), s) << "input: " << json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

// Random byte strings: raw bytes (mostly invalid UTF-8), ASCII words, multibyte text and special tokens.
std::vector<std::string> random_strings(int n, uint32_t seed, bool valid_only) {
  std::mt19937 rng(seed);
  static const char* parts[] = {" ", "  ", "\n", "the", "The", "é ", "'s", "123", "<|im_end|>",
                                "<|endoftext|>", "\xff", "\xc3", "\xe4\xbd", "\xed\xa0\x80", "\xf4\x90\x80\x80",
                                "\xc0\xaf", "\x80\x80", "<|im_", "\t", "\r\n", "x", "ü", "你好", "😀"};
  std::vector<std::string> out;
  for (int i = 0; i < n; ++i) {
    std::string s;
    const int len = static_cast<int>(rng() % 24);
    for (int k = 0; k < len; ++k) {
      if (valid_only) {
        const std::string p = parts[rng() % std::size(parts)];
        const std::string ascii(1, static_cast<char>(' ' + rng() % 95));
        s += rng() % 3 == 0 ? ascii : grm::is_valid_utf8(p) ? p : "ÿ";  // invalid pieces become a letter
      } else if (rng() % 3 == 0) {
        s += static_cast<char>(rng() % 256);
      } else {
        s += parts[rng() % std::size(parts)];
      }
    }
    out.push_back(std::move(s));
  }
  return out;
}

TEST(BpeTest, ByteLevelHasBytesThenSpecials) {
  auto t = BpeTokenizer::byte_level(kSpecials);
  EXPECT_EQ(t.vocab_size(), 259);
  EXPECT_EQ(t.eos_id(), 256);
  EXPECT_EQ(t.bos_id(), std::nullopt);
  EXPECT_EQ(t.encode("ab"), (std::vector<int>{'a', 'b'}));
  EXPECT_EQ(t.encode("<|im_end|>x"), (std::vector<int>{258, 'x'}));
  EXPECT_EQ(t.token_bytes(258), "<|im_end|>");
  EXPECT_EQ(t.token_bytes(0xff), "\xff");
  EXPECT_EQ(t.token_to_id("<|im_start|>"), 257);
  EXPECT_EQ(t.token_to_id("Ġ"), ' ');
  EXPECT_EQ(t.token_to_id("nope"), std::nullopt);
  EXPECT_THROW(t.token_bytes(259), grm::Error);
  EXPECT_THROW(t.token_bytes(-1), grm::Error);
  EXPECT_THROW(BpeTokenizer::byte_level({"<a>", "<a>"}), grm::Error);
  EXPECT_THROW(BpeTokenizer::byte_level({""}), grm::Error);
  EXPECT_EQ(BpeTokenizer::byte_level({}).eos_id(), std::nullopt);
  for (const auto& s : random_strings(200, 1)) expect_round_trip(t, s);
}

TEST(BpeTest, TrainingLearnsMergesAndRoundTrips) {
  const auto& t = trained();
  EXPECT_EQ(t.vocab_size(), 600);
  EXPECT_EQ(t.num_merges(), 600u - 256 - 3);
  EXPECT_EQ(t.eos_id(), 597);
  EXPECT_EQ(t.token_bytes(597), "<|endoftext|>");
  // Frequent words became single tokens.
  EXPECT_EQ(t.encode(" the").size(), 1u);
  EXPECT_LT(t.encode("the response is helpful").size(), 8u);
  for (const auto& s : parity_strings()) expect_round_trip(t, s);
  for (const auto& s : random_strings(1000, 2)) expect_round_trip(t, s);
}

TEST(BpeTest, TrainingIsDeterministic) {
  auto again = BpeTokenizer::train(corpus(), 600, kSpecials);
  EXPECT_EQ(again.to_json().dump(), trained().to_json().dump());
  EXPECT_THROW(BpeTokenizer::train(corpus(), 258, kSpecials), grm::Error);
  // Stops early when pairs run out (min_frequency).
  auto tiny = BpeTokenizer::train({"ab ab ab cd"}, 1000, {"<eos>"});
  EXPECT_EQ(tiny.num_merges(), 2u);  // "a"+"b", " "+"ab"
  EXPECT_EQ(tiny.vocab_size(), 259);
  EXPECT_EQ(tiny.encode(" ab"), (std::vector<int>{257}));
}

TEST(BpeTest, InvalidUtf8RunsAreSeparateWords) {
  const auto& t = trained();
  // The invalid byte splits "the" from " the" cleanly: both sides tokenize as on their own.
  const auto ids = t.encode("the\xff the");
  std::vector<int> expect = t.encode("the");
  expect.push_back(t.encode("\xff")[0]);
  for (int id : t.encode(" the")) expect.push_back(id);
  EXPECT_EQ(ids, expect);
  expect_round_trip(t, "\xc3\x28\xa0\xa1 \xe2\x82\x28 \xf0\x28\x8c\xbc");
}

TEST(BpeTest, LongRunsAndConcurrentEncoding) {
  const auto& t = trained();
  const std::string long_word(200'000, 'a'), long_space(100'000, ' ');
  expect_round_trip(t, long_word);
  expect_round_trip(t, long_space + "x" + long_space);
  expect_round_trip(t, std::string(50'000, '\xff'));
  // encode is const and thread-safe (shared word cache): results match the single-threaded ones.
  const auto strings = random_strings(300, 9);
  std::vector<std::vector<int>> expect;
  for (const auto& s : strings) expect.push_back(BpeTokenizer(t).encode(s));
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int k = 0; k < 4; ++k)
    threads.emplace_back([&, k] {
      for (size_t i = 0; i < strings.size(); ++i) mismatches[k] += t.encode(strings[i]) != expect[i];
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches, std::vector<int>(4, 0));
}

TEST(BpeTest, SaveLoadPreservesEverything) {
  const std::string dir = tmp_path("saved");
  fs::create_directories(dir);
  const std::string path = dir + "/tokenizer.json";
  trained().save(path);
  auto loaded = BpeTokenizer::from_json_file(path);
  EXPECT_EQ(loaded.vocab_size(), trained().vocab_size());
  EXPECT_EQ(loaded.eos_id(), trained().eos_id());
  EXPECT_EQ(loaded.to_json().dump(), trained().to_json().dump());
  for (const auto& s : parity_strings()) EXPECT_EQ(loaded.encode(s), trained().encode(s)) << s;
  // Through the generic loader (directory and file), and a tokenizer_config.json naming the eos.
  auto any = Tokenizer::load(dir);
  EXPECT_EQ(any->encode("hello the world"), trained().encode("hello the world"));
  write_file(dir + "/tokenizer_config.json", R"({"eos_token": {"content": "<|im_end|>"}, "bos_token": "<|im_start|>"})");
  any = Tokenizer::load(path);
  EXPECT_EQ(any->eos_id(), trained().token_to_id("<|im_end|>"));
  EXPECT_EQ(any->bos_id(), trained().token_to_id("<|im_start|>"));
  int files = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++files;
  EXPECT_EQ(files, 2);  // no temp files left
  fs::remove_all(dir);
}

TEST(BpeTest, GeneratedTokenizersFollowTheBosEosRule) {
  auto t = BpeTokenizer::byte_level({"<s>", "</s>"});  // first special is the eos, "<s>" stays the bos
  EXPECT_EQ(t.eos_id(), 256);
  EXPECT_EQ(t.bos_id(), 256);
  auto reloaded = BpeTokenizer::from_json(json::parse(t.to_json().dump()));
  EXPECT_EQ(reloaded.eos_id(), 257);  // rule 2 on reload: "</s>" is the EOS name
  EXPECT_EQ(reloaded.bos_id(), 256);
}

TEST(BpeTest, RejectsBadFiles) {
  const auto expect_error = [](const std::string& text, const std::string& needle) {
    const std::string p = tmp_path("bad.json");
    write_file(p, text);
    try {
      BpeTokenizer::from_json_file(p);
      ADD_FAILURE() << "no error for " << needle;
    } catch (const grm::Error& e) {
      EXPECT_EQ(std::string(e.what()).rfind(p, 0), 0u) << e.what();
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    fs::remove(p);
  };
  const json good = json::parse(BpeTokenizer::byte_level({"<|endoftext|>"}).to_json().dump());
  expect_error("{not json", "not valid JSON");
  json j = good;
  j["model"]["vocab"].erase("Ā");
  expect_error(j.dump(), "lacks the byte token");
  j = good;
  j["normalizer"] = {{"type", "Lowercase"}};
  expect_error(j.dump(), "unsupported normalizer");
  j = good;
  j["model"]["merges"] = {"a zz"};
  expect_error(j.dump(), "merge 'a zz'");
  j = good;
  j["model"]["type"] = "WordPiece";
  expect_error(j.dump(), "model.type");
  j = good;
  j["pre_tokenizer"] = {{"type", "Whitespace"}};
  expect_error(j.dump(), "Whitespace");
  j = good;
  j["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = "(unclosed";
  expect_error(j.dump(), "cannot compile regex");
  EXPECT_THROW(BpeTokenizer::from_json_file(tmp_path("missing.json")), grm::Error);
  EXPECT_THROW(Tokenizer::load(tmp_path("missing_dir")), grm::Error);
}

// ---- parity with @huggingface/tokenizers ----------------------------------------------------------------

// Runs tools/node/tokenize.js; returns the ids per string, or nullopt (with the reason) when node is absent.
std::optional<std::vector<std::vector<int>>> node_encode(const std::string& tokenizer_json,
                                                         const std::vector<std::string>& strings, std::string* why) {
  const std::string tools = std::string(GRM_SOURCE_DIR) + "/tools/node";
  if (std::system("node --version > /dev/null 2>&1") != 0) {
    *why = "node is not installed (scripts/setup.sh installs the test peers)";
    return std::nullopt;
  }
  if (!fs::exists(tools + "/node_modules/@huggingface/tokenizers")) {
    *why = "tools/node/node_modules is missing; run scripts/setup.sh (npm install in tools/node)";
    return std::nullopt;
  }
  const std::string strings_path = tmp_path("strings.json");
  write_file(strings_path, json(strings).dump());
  const std::string cmd = "node '" + tools + "/tokenize.js' '" + tokenizer_json + "' '" + strings_path + "' 2>&1";
  std::string out;
  FILE* pipe = ::popen(cmd.c_str(), "r");
  char buf[4096];
  size_t n;
  while (pipe && (n = fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int rc = pipe ? ::pclose(pipe) : -1;
  fs::remove(strings_path);
  if (rc != 0) {
    ADD_FAILURE() << "tokenize.js failed: " << out;
    return std::vector<std::vector<int>>{};
  }
  return json::parse(out).get<std::vector<std::vector<int>>>();
}

void check_parity(const std::string& name, const BpeTokenizer& t, const std::string& path, bool round_trip = true) {
  std::string why;
  const auto& strings = parity_strings();
  auto ref = node_encode(path, strings, &why);
  if (!ref) GTEST_SKIP() << why;
  ASSERT_EQ(ref->size(), strings.size()) << name;
  for (size_t i = 0; i < strings.size(); ++i) {
    EXPECT_EQ(t.encode(strings[i]), (*ref)[i]) << name << ": " << json(strings[i]).dump();
    if (round_trip) expect_round_trip(t, strings[i]);
  }
}

// Saves `j` to a file, loads it back with grm, and compares against the node reference.
void check_variant(const std::string& name, const nlohmann::ordered_json& j, bool round_trip = true) {
  const std::string path = tmp_path(name + ".json");
  write_file(path, j.dump());
  auto t = BpeTokenizer::from_json_file(path);
  check_parity(name, t, path, round_trip);
  fs::remove(path);
}

nlohmann::ordered_json split_then_byte_level(const std::vector<std::string>& patterns) {
  nlohmann::ordered_json steps = nlohmann::ordered_json::array();
  for (const auto& p : patterns)
    steps.push_back({{"type", "Split"}, {"pattern", {{"Regex", p}}}, {"behavior", "Isolated"}, {"invert", false}});
  steps.push_back({{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", false}});
  return {{"type", "Sequence"}, {"pretokenizers", steps}};
}

TEST(BpeParityTest, TrainedQwen2Style) {
  const std::string path = tmp_path("trained.json");
  trained().save(path);
  check_parity("trained", trained(), path);
  fs::remove(path);
}

TEST(BpeParityTest, Gpt2ByteLevelRegex) {
  auto j = trained().to_json();
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", true}, {"use_regex", true}};
  check_variant("gpt2", j);
}

TEST(BpeParityTest, Gpt2AddPrefixSpace) {
  auto j = trained().to_json();
  j["pre_tokenizer"] = {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}};
  check_variant("gpt2_prefix", j, /*round_trip=*/false);
}

TEST(BpeParityTest, Llama3IgnoreMerges) {
  auto j = trained().to_json();
  std::string pattern = grm::engine::bpe::kQwen2Pattern;
  pattern.replace(pattern.find(R"(\p{N}|)"), 6, R"(\p{N}{1,3}|)");
  j["pre_tokenizer"] = split_then_byte_level({pattern});
  j["model"]["ignore_merges"] = true;
  // Make ignore_merges matter: a whole word whose merge path does not exist.
  j["model"]["vocab"]["Ġworld"] = 5000;
  check_variant("llama3", j);
}

TEST(BpeParityTest, DeepSeekV3StyleSplits) {
  auto j = trained().to_json();
  j["pre_tokenizer"] = split_then_byte_level(
      {R"(\p{N}{1,3})", R"([一-龥぀-ゟ゠-ヿ]+)",
       R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)"});
  check_variant("deepseek_v3", j);
}

TEST(BpeParityTest, DigitsAndPairMerges) {
  auto j = trained().to_json();
  auto pre = split_then_byte_level({grm::engine::bpe::kGpt2Pattern});
  nlohmann::ordered_json digits = nlohmann::ordered_json::object();
  digits["type"] = "Digits";
  digits["individual_digits"] = true;
  pre["pretokenizers"].insert(pre["pretokenizers"].begin(), digits);
  j["pre_tokenizer"] = pre;
  nlohmann::ordered_json pairs = nlohmann::ordered_json::array();
  for (const auto& m : j["model"]["merges"]) {
    const std::string s = m.get<std::string>();
    pairs.push_back({s.substr(0, s.find(' ')), s.substr(s.find(' ') + 1)});
  }
  j["model"]["merges"] = pairs;
  check_variant("digits_pairs", j);
}

TEST(BpeParityTest, HandWrittenQwen2Fixture) {
  const std::string path = std::string(GRM_TEST_DATA) + "/tokenizers/qwen2_style/tokenizer.json";
  auto t = BpeTokenizer::from_json_file(path);
  EXPECT_EQ(t.eos_id(), t.token_to_id("<|im_end|>"));  // from its tokenizer_config.json
  EXPECT_EQ(t.bos_id(), std::nullopt);
  EXPECT_EQ(t.encode("你好"), (std::vector<int>{*t.token_to_id("ä½łå¥½")}));
  check_parity("qwen2_fixture", t, path);
}

TEST(BpeTest, TrainsAMegabyteQuickly) {
  // ~1 MB of pseudo-words built from syllables (a Zipf-like mix of frequent and rare words).
  static const char* syl[] = {"ka", "to", "ri", "mu", "ne", "sha", "lo", "vi", "den", "tor", "qua", "ex",
                              "pli", "ran", "gu", "ze", "bo", "fin", "ol", "ast"};
  std::mt19937 rng(7);
  std::vector<std::string> big;
  size_t bytes = 0;
  while (bytes < 1'000'000) {
    std::string line;
    for (int w = 0; w < 12; ++w) {
      line += w ? " " : "";
      const int n = 1 + static_cast<int>(rng() % 4);
      for (int k = 0; k < n; ++k) line += syl[std::min(rng() % 20, rng() % 20)];
      if (rng() % 10 == 0) line += std::to_string(rng() % 1000);
    }
    bytes += line.size() + 1;
    big.push_back(line + "\n");
  }
  const auto t0 = std::chrono::steady_clock::now();
  auto t = BpeTokenizer::train(big, 4000, kSpecials);
  const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("trained %zu merges on %.1f MB in %.2f s\n", t.num_merges(), bytes / 1e6, secs);
  EXPECT_EQ(t.vocab_size(), 4000);
  EXPECT_LT(secs, 30.0);
  for (size_t i = 0; i < 50; ++i) expect_round_trip(t, big[i]);
}

// Real tokenizers shipped by npm packages (pinned in tools/node/package.json): DeepSeek-V3 and Qwen3.
void check_real(const std::string& package, std::optional<int> bos, std::optional<int> eos) {
  const std::string dir = std::string(GRM_SOURCE_DIR) + "/tools/node/node_modules/@lenml/" + package + "/models";
  if (!fs::exists(dir + "/tokenizer.json"))
    GTEST_SKIP() << dir << " is missing; run `npm install` in tools/node (scripts/setup.sh does on fresh checkouts)";
  auto t = BpeTokenizer::from_json_file(dir + "/tokenizer.json");  // reads its tokenizer_config.json too
  EXPECT_EQ(t.bos_id(), bos);
  EXPECT_EQ(t.eos_id(), eos);
  for (const auto& s : random_strings(300, 11)) expect_round_trip(t, s);
  check_parity(package, t, dir + "/tokenizer.json");
}

TEST(BpeParityTest, RealDeepSeekV3) { check_real("tokenizer-deepseek_v3", 0, 1); }
TEST(BpeParityTest, RealQwen3) { check_real("tokenizer-qwen3", std::nullopt, 151645); }

}  // namespace
