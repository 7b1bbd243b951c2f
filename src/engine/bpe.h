// Byte-level BPE (GPT-2 / Qwen2 / Llama-3 / DeepSeek style), read from and written to HF tokenizer.json.
//
// What is supported (anything else throws grm::Error naming the file and the field):
//  - model.type "BPE" with vocab {token: id}, merges as "a b" strings or ["a", "b"] pairs, ignore_merges;
//    dropout must be null; continuing_subword_prefix / end_of_word_suffix must be null or "".
//  - pre_tokenizer ByteLevel(add_prefix_space, use_regex → GPT-2 pattern), or Sequence of Split(Regex or
//    String pattern, any behavior, invert) / Digits steps ending with ByteLevel. Regexes run on PCRE2 with
//    UTF + UCP (Unicode \s \d \w), close to Oniguruma's semantics (see bpe_pretokenizer.h for invalid UTF-8).
//  - normalizer null, NFC, or a Sequence of those. NFC is NOT applied: encode stays lossless, and NFC text (nearly all text)
//    tokenizes exactly as in HF; decomposed input may differ.
//  - decoder ByteLevel or null (decoding is always the byte-level inverse). post_processor is kept for
//    save() but never applied (encode adds no BOS/EOS).
//  - added_tokens are matched literally, leftmost-longest, before pre-tokenization: first those with
//    normalized=false, then those with normalized=true in the remaining text (HF's two passes).
//    lstrip / rstrip / single_word are ignored (they would drop whitespace and break the round trip).
//
// BOS / EOS rule (documented for reproducibility):
//  1. from_json_file: a tokenizer_config.json next to the file whose "bos_token" / "eos_token" (a string or
//     {"content": ...}) names a known token decides that id; an explicit null there means none.
//  2. Otherwise eos = the lowest-id special added token named one of <|endoftext|>, <|end_of_text|>, </s>,
//     <eos>, <|eot_id|>, <|im_end|>, <|end|>, <｜end▁of▁sentence｜>; failing that, the lowest-id special
//     added token that is not a BOS name. bos = the lowest-id special added token named one of
//     <|begin_of_text|>, <s>, <bos>, <|startoftext|>, <｜begin▁of▁sentence｜>; else none.
//  byte_level() and train() put the special tokens in the given order after the byte/merge tokens and make
//  the first one the eos, which rule 2 reproduces on reload whenever the first special is an EOS name or no
//  special is.
#pragma once
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/bpe_pretokenizer.h"
#include "engine/tokenizer.h"

namespace grm::engine {

struct BpeAddedToken {
  int id = 0;
  std::string content;
  bool special = true;
  bool normalized = false;
  bool single_word = false, lstrip = false, rstrip = false;  // kept for save(); not applied
};

struct BpeTrainOptions {
  int min_frequency = 2;                       // pairs seen fewer times are never merged
  std::string pattern = bpe::kQwen2Pattern;    // the Split regex of the pre-tokenizer written to the file
};

class BpeTokenizer : public Tokenizer {
 public:
  // Loads an HF tokenizer.json. Errors name `path`.
  static BpeTokenizer from_json_file(const std::string& path);
  // Builds from parsed tokenizer.json; error messages are prefixed with `origin`.
  static BpeTokenizer from_json(const nlohmann::json& j, const std::string& origin = "tokenizer.json");
  // 256 byte tokens (id = byte value), then the special tokens in order; no merges. First special = eos.
  static BpeTokenizer byte_level(std::vector<std::string> special_tokens);
  // Standard byte-level BPE training: pre-tokenize (special tokens in texts are cut out first), count
  // words, then repeatedly merge the most frequent adjacent pair (ties: the pair with the smaller ids)
  // with incrementally updated pair counts. Ids: bytes 0..255, merges in order, then special tokens.
  // vocab_size counts all three; training stops early when no pair reaches min_frequency. Deterministic.
  static BpeTokenizer train(const std::vector<std::string>& texts, int vocab_size,
                            std::vector<std::string> special_tokens, const BpeTrainOptions& options = {});

  // Writes tokenizer.json atomically (temp file + rename); @huggingface/tokenizers and HF tokenizers read it.
  void save(const std::string& path) const;
  nlohmann::ordered_json to_json() const;

  std::vector<int> encode(std::string_view text) const override;
  std::string token_bytes(int id) const override;  // throws grm::Error for ids that name no token
  int vocab_size() const override;                 // largest id + 1
  std::optional<int> bos_id() const override { return bos_; }
  std::optional<int> eos_id() const override { return eos_; }
  // Takes a vocabulary spelling ("Ġthe") or an added token's content ("<|im_end|>").
  std::optional<int> token_to_id(std::string_view token) const override;

  void set_bos_id(std::optional<int> id) { bos_ = id; }
  void set_eos_id(std::optional<int> id) { eos_ = id; }
  const std::vector<BpeAddedToken>& added_tokens() const;
  size_t num_merges() const;

  struct State;  // immutable tables, shared by copies (defined in bpe.cpp)
  struct Cache;  // word → ids memo, guarded by a mutex

 private:
  BpeTokenizer() = default;  // built only by the factories above
  // Bytes at ids 0..255, then one token per merge (id pairs, in rank order; a merge whose bytes already
  // have a token reuses it), then `specials`; eos = the first special. Used by byte_level() and train().
  static BpeTokenizer from_merges(const std::vector<std::pair<int, int>>& merges,
                                  const std::vector<std::string>& specials, const std::string& pattern);
  std::vector<int> encode_word(std::string_view bytes) const;

  std::shared_ptr<const State> s_;
  std::shared_ptr<Cache> cache_;
  std::optional<int> bos_, eos_;
};

}  // namespace grm::engine
