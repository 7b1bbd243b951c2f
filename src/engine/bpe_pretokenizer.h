// Byte-level BPE building blocks: GPT-2's byte↔unicode alphabet, a PCRE2 regex, and the HF pre-tokenizer
// (ByteLevel, Split, Digits, Sequence) that cuts text into the words BPE merges within.
//
// Invalid UTF-8: HF only ever sees valid strings; grm accepts any bytes. Before any regex runs, the text is
// cut into maximal valid-UTF-8 runs and maximal invalid runs (RFC 3629 validity: no overlongs, surrogates
// or code points above U+10FFFF). Each invalid run becomes one word of its own that no later step splits
// further; the regexes only ever see the valid runs, each as if it were a whole text (so a lookahead at
// the end of a run sees end-of-text). Byte-level BPE has a token for every byte, so such words still round
// trip. The regexes are compiled with PCRE2_MATCH_INVALID_UTF as well, as a second line of defence.
#pragma once
#include <array>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

namespace grm::engine::bpe {

// GPT-2's pre-tokenizer pattern (HF ByteLevel with use_regex=true).
inline constexpr const char* kGpt2Pattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
// Qwen2's Split pattern (Llama-3's is the same with \p{N}{1,3} instead of \p{N}).
inline constexpr const char* kQwen2Pattern =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

// The UTF-8 encoding of the unicode character GPT-2 uses to spell byte b in vocabularies.
const std::array<std::string, 256>& byte_to_unicode();
// Spelling → raw bytes; nullopt when `token` holds a character outside the 256-character alphabet.
std::optional<std::string> unicode_to_bytes(std::string_view token);
// Raw bytes → spelling.
std::string bytes_to_unicode(std::string_view bytes);

// Length of the valid UTF-8 character starting at s[i], or 0 when none starts there.
size_t utf8_char_len(std::string_view s, size_t i);

// A compiled PCRE2 pattern (UTF + UCP + MATCH_INVALID_UTF, JIT when available). Cheap to copy.
class Regex {
 public:
  explicit Regex(const std::string& pattern);  // throws grm::Error naming the pattern
  // Non-empty matches as [begin, end) byte offsets, leftmost first (empty matches are skipped).
  std::vector<std::pair<size_t, size_t>> find_all(std::string_view s) const;
  const std::string& pattern() const { return pattern_; }

 private:
  std::string pattern_;
  std::shared_ptr<void> code_;  // pcre2_code_8
};

// One word out of the pre-tokenizer: its bytes, and whether it is an invalid-UTF-8 run.
struct Word {
  std::string_view text;  // into the text given to split(), or into Words::storage
  bool opaque = false;
};

struct Words {
  std::vector<Word> list;
  std::deque<std::string> storage;  // words rewritten by add_prefix_space (stable addresses)
};

// The HF pre-tokenizer, restricted to what byte-level BPE uses: Sequence of Split / Digits steps ending with
// one ByteLevel (which may split with the GPT-2 pattern itself). Byte→unicode mapping is left to the model.
class PreTokenizer {
 public:
  // Throws grm::Error (message without a file name) for unsupported configurations.
  static PreTokenizer from_json(const nlohmann::json& j);
  // Sequence[Split(Regex pattern, Isolated), ByteLevel(add_prefix_space=false, use_regex=false)].
  static PreTokenizer split_then_byte_level(const std::string& pattern);
  // Cuts `text` (which holds no added tokens) into words. Their concatenation is `text`, except that
  // ByteLevel with add_prefix_space prepends a space to each word that does not start with one.
  // The views point into `text` (which must outlive the result) or into the result's storage.
  Words split(std::string_view text) const;
  const nlohmann::json& json() const { return json_; }

 private:
  enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };
  struct Step {
    std::optional<Regex> regex;  // Split with a Regex pattern, or Digits, or ByteLevel(use_regex)
    std::string literal;         // Split with a String pattern
    Behavior behavior = Behavior::Isolated;
    bool invert = false;
    bool byte_level = false;        // the ByteLevel step (splits only when regex is set)
    bool add_prefix_space = false;  // ByteLevel only
  };
  static Step parse_step(const nlohmann::json& j, bool& saw_byte_level);
  static void apply(const Step& step, Words& words);

  std::vector<Step> steps_;
  nlohmann::json json_;
};

}  // namespace grm::engine::bpe
