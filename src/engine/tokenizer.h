// Tokenizers: byte-level BPE (HF tokenizer.json) and SentencePiece (.model), behind one interface.
#pragma once
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace grm::engine {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Encodes arbitrary bytes (valid UTF-8 or not); special/added tokens written literally in `text` are
  // matched as single tokens. No BOS is added (callers add bos_id() when the model needs it).
  virtual std::vector<int> encode(std::string_view text) const = 0;
  // The exact bytes a token stands for (for byte-level BPE: the decoded bytes; for SentencePiece: the piece
  // with U+2581 turned into a space and <0xNN> byte pieces turned into their byte). Special tokens give
  // their literal text. Concatenating token_bytes over an encoding reproduces the input exactly.
  virtual std::string token_bytes(int id) const = 0;
  std::string decode(const std::vector<int>& ids) const;
  virtual int vocab_size() const = 0;
  virtual std::optional<int> bos_id() const = 0;
  virtual std::optional<int> eos_id() const = 0;
  virtual std::optional<int> token_to_id(std::string_view token) const = 0;
  // Loads <dir>/tokenizer.json (byte-level BPE) or <dir>/tokenizer.model (SentencePiece), or a file path.
  // Throws grm::Error naming the file on any problem.
  static std::unique_ptr<Tokenizer> load(const std::string& dir_or_file);
};

}  // namespace grm::engine
