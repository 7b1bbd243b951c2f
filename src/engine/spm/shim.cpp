// The SentencePiece shim: plain C entry points over sentencepiece::SentencePieceProcessor, loaded with
// dlopen by engine/sentencepiece_tokenizer.cpp. See engine/spm_shim.h for why it exists.
#include "engine/spm_shim.h"

#include <cstring>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

namespace {

void write_err(char* err, size_t errlen, const std::string& msg) {
  if (!err || errlen == 0) return;
  const size_t n = std::min(errlen - 1, msg.size());
  std::memcpy(err, msg.data(), n);
  err[n] = '\0';
}

sentencepiece::SentencePieceProcessor* sp(void* h) { return static_cast<sentencepiece::SentencePieceProcessor*>(h); }

}  // namespace

extern "C" {

void* grm_spm_load(const char* path, char* err, size_t errlen) {
  auto* p = new sentencepiece::SentencePieceProcessor();
  const auto status = p->Load(path);
  if (!status.ok()) {
    write_err(err, errlen, status.ToString());
    delete p;
    return nullptr;
  }
  return p;
}

void grm_spm_free(void* h) { delete sp(h); }

long grm_spm_encode(void* h, const char* text, size_t len, int* out, size_t cap) {
  std::vector<int> ids;
  if (!sp(h)->Encode(std::string_view(text, len), &ids).ok()) return -1;
  for (size_t i = 0; i < ids.size() && i < cap; ++i) out[i] = ids[i];
  return static_cast<long>(ids.size());
}

int grm_spm_vocab_size(void* h) { return sp(h)->GetPieceSize(); }

long grm_spm_id_to_piece(void* h, int id, char* out, size_t cap) {
  if (id < 0 || id >= sp(h)->GetPieceSize()) return -1;
  const std::string& piece = sp(h)->IdToPiece(id);
  std::memcpy(out, piece.data(), std::min(cap, piece.size()));
  return static_cast<long>(piece.size());
}

int grm_spm_piece_to_id(void* h, const char* piece, size_t len) {
  return sp(h)->PieceToId(std::string_view(piece, len));
}

int grm_spm_bos_id(void* h) { return sp(h)->bos_id(); }
int grm_spm_eos_id(void* h) { return sp(h)->eos_id(); }
int grm_spm_unk_id(void* h) { return sp(h)->unk_id(); }
int grm_spm_is_byte(void* h, int id) { return sp(h)->IsByte(id) ? 1 : 0; }
int grm_spm_is_control(void* h, int id) { return sp(h)->IsControl(id) ? 1 : 0; }

int grm_spm_train(const char* args, char* err, size_t errlen) {
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  if (!status.ok()) {
    write_err(err, errlen, status.ToString());
    return 1;
  }
  return 0;
}

}  // extern "C"
