// Tokenizer::load (picks byte-level BPE or SentencePiece) and Tokenizer::decode.
#include "engine/tokenizer.h"

#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "engine/bpe.h"
#include "engine/sentencepiece_tokenizer.h"

namespace grm::engine {
namespace fs = std::filesystem;

std::string Tokenizer::decode(const std::vector<int>& ids) const {
  std::string out;
  for (int id : ids) out += token_bytes(id);
  return out;
}

// A directory: tokenizer.json when it loads as byte-level BPE, else tokenizer.model (models such as Gemma
// ship a non-byte-level tokenizer.json next to their SentencePiece model). A file: by extension, else by
// content (a JSON object is tokenizer.json).
std::unique_ptr<Tokenizer> Tokenizer::load(const std::string& dir_or_file) {
  std::error_code ec;
  const fs::path p(dir_or_file);
  if (fs::is_directory(p, ec)) {
    const fs::path json = p / "tokenizer.json", model = p / "tokenizer.model";
    const bool has_json = fs::exists(json, ec), has_model = fs::exists(model, ec);
    if (has_json) {
      try {
        return std::make_unique<BpeTokenizer>(BpeTokenizer::from_json_file(json.string()));
      } catch (const Error&) {
        if (!has_model) throw;
      }
    }
    if (has_model) return std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::from_file(model.string()));
    throw Error(dir_or_file + ": no tokenizer.json or tokenizer.model in this directory");
  }
  if (!fs::exists(p, ec)) throw Error(dir_or_file + ": no such file or directory");
  bool json = p.extension() == ".json";
  if (!json && p.extension() != ".model") {
    std::ifstream in(p, std::ios::binary);
    char c = 0;
    while (in.get(c) && (c == ' ' || c == '\n' || c == '\r' || c == '\t')) {
    }
    json = c == '{';
  }
  if (json) return std::make_unique<BpeTokenizer>(BpeTokenizer::from_json_file(p.string()));
  return std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::from_file(p.string()));
}

}  // namespace grm::engine
