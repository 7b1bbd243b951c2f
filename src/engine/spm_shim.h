// C interface of grm's SentencePiece shim (src/engine/spm/shim.cpp, built as the module grm_spm.so).
//
// WHY A SHIM: Debian's libsentencepiece.so.0 carries its own copy of protobuf-lite and exports its
// symbols; libtorch loads libprotobuf.so.32. Linking both into one process makes protobuf's static
// initialisers call into the wrong copy and the process segfaults before main(). So grm_engine never links
// sentencepiece: SentencePieceTokenizer loads grm_spm.so with dlmopen(LM_ID_NEWLM) — a separate link
// namespace with its own libstdc++ and protobuf (RTLD_DEEPBIND was tried and crashed on the first log line:
// the module bound to a std::cerr that is never initialised) — and calls these C functions through dlsym.
// Only plain C data crosses this interface.
#pragma once
#include <cstddef>

extern "C" {
// Returns a handle or nullptr; on failure writes a message into err (NUL-terminated, at most errlen bytes).
void* grm_spm_load(const char* path, char* err, size_t errlen);
void grm_spm_free(void* h);
// Encodes text into ids; returns the number of ids (writes at most cap), or -1 on error.
long grm_spm_encode(void* h, const char* text, size_t len, int* out, size_t cap);
int grm_spm_vocab_size(void* h);
// Writes the piece of `id` into out (not NUL-terminated); returns its length (may exceed cap: call again).
long grm_spm_id_to_piece(void* h, int id, char* out, size_t cap);
int grm_spm_piece_to_id(void* h, const char* piece, size_t len);  // unk id when absent
int grm_spm_bos_id(void* h);  // -1 when the model has none
int grm_spm_eos_id(void* h);
int grm_spm_unk_id(void* h);
int grm_spm_is_byte(void* h, int id);
int grm_spm_is_control(void* h, int id);
// Trains a model (for tests and tooling): args as in spm_train ("--input=... --model_prefix=..."). 0 on success.
int grm_spm_train(const char* args, char* err, size_t errlen);
}
