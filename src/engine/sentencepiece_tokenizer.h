// SentencePiece (tokenizer.model: Llama-2, Gemma, ...) behind the Tokenizer interface.
//
// libsentencepiece runs inside the dlopen()ed module grm_spm.so (see engine/spm_shim.h for why). The
// module is looked for at $GRM_SPM_MODULE, then next to the running executable, then at the build-tree
// path compiled in. The .model protobuf is also read here directly (piece types, normalizer settings).
//
// Lossless encoding: concat(token_bytes(encode(x))) == x for every x, provided the model has byte pieces
// (byte_fallback) and its normalizer is identity (Llama, Gemma). To get there:
//  - The model's dummy prefix and whitespace squeezing are switched off at load (a NormalizerSpec
//    override is appended to the protobuf). So encode("Hello") gives "Hello", not "▁Hello"; to reproduce
//    sentencepiece's own start-of-text tokenization for a model with adds_dummy_prefix(), encode " " + text.
//  - Invalid UTF-8 bytes (which sentencepiece would turn into U+FFFD), and a literal U+2581 in the text
//    (which it would read as a space), are cut out and encoded as <0xNN> byte pieces (invalid bytes become
//    the unk id when the model has no byte pieces).
//  - Control and unknown pieces (<s>, </s>, <unk>, <pad>, ...) written literally in the text are matched
//    as single tokens (leftmost-longest) before sentencepiece sees the text; user-defined pieces are matched
//    by sentencepiece itself.
// With a non-identity normalizer (e.g. nmt_nfkc) text the normalizer changes does not round trip; without
// byte pieces, characters outside the vocabulary become <unk>, whose token_bytes is its literal piece.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "engine/tokenizer.h"

namespace grm::engine {

class SentencePieceTokenizer : public Tokenizer {
 public:
  // Loads a tokenizer.model; errors (unreadable, not a model, module missing) throw grm::Error naming it.
  static SentencePieceTokenizer from_file(const std::string& path);
  // Trains a model with libsentencepiece; `args` as for spm_train ("--input=... --model_prefix=...").
  static void train(const std::string& args);

  std::vector<int> encode(std::string_view text) const override;
  // Byte pieces give their byte; control/unknown pieces their literal text; others the piece with U+2581
  // turned into a space (when the model escapes whitespace).
  std::string token_bytes(int id) const override;
  int vocab_size() const override;
  std::optional<int> bos_id() const override;
  std::optional<int> eos_id() const override;
  std::optional<int> token_to_id(std::string_view piece) const override;  // the piece spelling ("▁the")

  bool adds_dummy_prefix() const;     // the model's own setting (not applied by encode; see above)
  std::string normalizer_name() const;  // "identity", "nmt_nfkc", ...

  struct Impl;

 private:
  SentencePieceTokenizer() = default;  // built only by from_file()
  std::shared_ptr<const Impl> impl_;
};

}  // namespace grm::engine
