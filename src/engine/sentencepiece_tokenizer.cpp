// SentencePiece tokenizer: .model protobuf reading, the grm_spm.so module, lossless encode (see header).
#include "engine/sentencepiece_tokenizer.h"

#include <dlfcn.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <type_traits>
#include <unordered_map>

#include "core/error.h"
#include "engine/bpe_pretokenizer.h"  // bpe::utf8_char_len
#include "engine/spm_shim.h"

namespace grm::engine {
namespace fs = std::filesystem;

namespace {

// ---- the dlopen()ed module ----------------------------------------------------------------------------

struct Module {
  decltype(&grm_spm_load) load = nullptr;
  decltype(&grm_spm_free) free = nullptr;
  decltype(&grm_spm_encode) encode = nullptr;
  decltype(&grm_spm_vocab_size) vocab_size = nullptr;
  decltype(&grm_spm_bos_id) bos_id = nullptr;
  decltype(&grm_spm_eos_id) eos_id = nullptr;
  decltype(&grm_spm_unk_id) unk_id = nullptr;
  decltype(&grm_spm_train) train = nullptr;
};

Module open_module() {
  std::vector<std::string> candidates;
  if (const char* env = std::getenv("GRM_SPM_MODULE"); env && *env) candidates.push_back(env);
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  if (!ec) candidates.push_back((exe.parent_path() / "grm_spm.so").string());
#ifdef GRM_SPM_MODULE
  candidates.push_back(GRM_SPM_MODULE);
#endif
  std::string tried;
  for (const auto& path : candidates) {
    if (!fs::exists(path, ec)) {
      tried += " " + path + " (missing);";
      continue;
    }
    // A new link-map namespace: the module, libsentencepiece, its protobuf-lite and its own libstdc++ are
    // isolated from libtorch's libprotobuf. (RTLD_DEEPBIND is not enough: the module then binds to
    // libstdc++'s never-constructed std::cerr, since the executable holds the live copy-relocated one, and
    // sentencepiece's first log line segfaults.) Only plain C data crosses the boundary (spm_shim.h).
    void* h = ::dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!h) {
      tried += " " + path + " (" + ::dlerror() + ");";
      continue;
    }
    Module m;
    const auto sym = [&](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(::dlsym(h, name));
      if (!fn) throw Error("SentencePiece module " + path + " lacks " + name);
    };
    sym(m.load, "grm_spm_load");
    sym(m.free, "grm_spm_free");
    sym(m.encode, "grm_spm_encode");
    sym(m.vocab_size, "grm_spm_vocab_size");
    sym(m.bos_id, "grm_spm_bos_id");
    sym(m.eos_id, "grm_spm_eos_id");
    sym(m.unk_id, "grm_spm_unk_id");
    sym(m.train, "grm_spm_train");
    return m;  // the handle stays open for the life of the process
  }
  throw Error("cannot load the SentencePiece module grm_spm.so; tried:" + tried + " (set GRM_SPM_MODULE)");
}

const Module& module() {
  static const Module m = open_module();
  return m;
}

// ---- minimal protobuf reading of sentencepiece's ModelProto ---------------------------------------------

enum PieceType { kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct Reader {
  const unsigned char* p;
  const unsigned char* end;
  bool ok = true;

  uint64_t varint() {
    uint64_t v = 0;
    for (int shift = 0; shift < 64 && p < end; shift += 7) {
      const unsigned char b = *p++;
      v |= static_cast<uint64_t>(b & 0x7f) << shift;
      if (!(b & 0x80)) return v;
    }
    ok = false;
    return 0;
  }
  std::string_view bytes() {
    const uint64_t n = varint();
    if (!ok || n > static_cast<uint64_t>(end - p)) {
      ok = false;
      return {};
    }
    std::string_view s(reinterpret_cast<const char*>(p), n);
    p += n;
    return s;
  }
  void skip(uint32_t wire) {
    switch (wire) {
      case 0: varint(); break;
      case 1: p = end - p >= 8 ? p + 8 : (ok = false, end); break;
      case 2: bytes(); break;
      case 5: p = end - p >= 4 ? p + 4 : (ok = false, end); break;
      default: ok = false; p = end;
    }
  }
  // Calls f(field, wire) for each field; f consumes the value (or calls skip).
  template <class F>
  bool each(F f) {
    while (ok && p < end) {
      const uint64_t tag = varint();
      if (!ok) break;
      f(static_cast<uint32_t>(tag >> 3), static_cast<uint32_t>(tag & 7));
    }
    return ok;
  }
};

Reader reader(std::string_view s) {
  const auto* b = reinterpret_cast<const unsigned char*>(s.data());
  return {b, b + s.size()};
}

}  // namespace

struct SentencePieceTokenizer::Impl {
  std::string path;
  void* handle = nullptr;
  std::vector<std::string> pieces;
  std::vector<int> types;
  std::unordered_map<std::string, int> piece_id;
  std::array<int, 256> byte_piece;  // byte → <0xNN> id, -1 when absent
  std::vector<std::pair<std::string, int>> literals;  // control/unknown pieces matched in text, longest first
  std::string normalizer = "nmt_nfkc";
  bool add_dummy_prefix = true, escape_whitespaces = true;
  int bos = -1, eos = -1, unk = 0;

  ~Impl() {
    if (handle) module().free(handle);
  }

  // Bytes sentencepiece cannot carry faithfully: invalid UTF-8, and a literal U+2581 (which it would read
  // as an escaped space) when the model has byte pieces to spell it with.
  size_t opaque_len(std::string_view text, size_t i) const {
    const size_t n = bpe::utf8_char_len(text, i);
    if (n == 0) return 1;
    if (escape_whitespaces && byte_piece[0xE2] >= 0 && text.compare(i, 3, "\xe2\x96\x81") == 0) return 3;
    return 0;
  }

  void encode_text(std::string_view text, std::vector<int>& out) const {
    size_t i = 0;
    while (i < text.size()) {
      size_t j = i;
      while (j < text.size() && opaque_len(text, j) == 0) j += bpe::utf8_char_len(text, j);
      if (j > i) encode_valid(text.substr(i, j - i), out);
      for (size_t n; j < text.size() && (n = opaque_len(text, j)) > 0; j += n)
        for (size_t k = j; k < j + n; ++k) {
          const int id = byte_piece[static_cast<unsigned char>(text[k])];
          out.push_back(id >= 0 ? id : unk);
        }
      i = j;
    }
  }

  void encode_valid(std::string_view text, std::vector<int>& out) const {
    const size_t base = out.size();
    out.resize(base + text.size() + 8);
    long n = module().encode(handle, text.data(), text.size(), out.data() + base, out.size() - base);
    if (n >= 0 && static_cast<size_t>(n) > out.size() - base) {
      out.resize(base + n);
      n = module().encode(handle, text.data(), text.size(), out.data() + base, out.size() - base);
    }
    if (n < 0) throw Error(path + ": sentencepiece failed to encode a " + std::to_string(text.size()) + "-byte text");
    out.resize(base + n);
  }
};

SentencePieceTokenizer SentencePieceTokenizer::from_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  std::string proto((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

  auto impl = std::make_shared<Impl>();
  impl->path = path;
  impl->byte_piece.fill(-1);
  Reader r = reader(proto);
  const bool ok = r.each([&](uint32_t field, uint32_t wire) {
    if (field == 1 && wire == 2) {  // SentencePiece { piece = 1; score = 2; type = 3 }
      Reader pr = reader(r.bytes());
      std::string piece;
      int type = kNormal;
      pr.each([&](uint32_t f, uint32_t w) {
        if (f == 1 && w == 2) piece = std::string(pr.bytes());
        else if (f == 3 && w == 0) type = static_cast<int>(pr.varint());
        else pr.skip(w);
      });
      r.ok = r.ok && pr.ok;
      impl->pieces.push_back(std::move(piece));
      impl->types.push_back(type);
    } else if (field == 3 && wire == 2) {  // NormalizerSpec; repeated occurrences merge
      Reader nr = reader(r.bytes());
      nr.each([&](uint32_t f, uint32_t w) {
        if (f == 1 && w == 2) impl->normalizer = std::string(nr.bytes());
        else if (f == 3 && w == 0) impl->add_dummy_prefix = nr.varint() != 0;
        else if (f == 5 && w == 0) impl->escape_whitespaces = nr.varint() != 0;
        else nr.skip(w);
      });
      r.ok = r.ok && nr.ok;
    } else {
      r.skip(wire);
    }
  });
  if (!ok || impl->pieces.empty()) throw Error(path + ": not a SentencePiece model (bad protobuf or no pieces)");

  for (size_t id = 0; id < impl->pieces.size(); ++id) {
    const std::string& p = impl->pieces[id];
    impl->piece_id.emplace(p, static_cast<int>(id));
    const int t = impl->types[id];
    if (t == kByte && p.size() == 6 && p.rfind("<0x", 0) == 0 && p[5] == '>')
      impl->byte_piece[std::stoi(p.substr(3, 2), nullptr, 16) & 0xff] = static_cast<int>(id);
    if ((t == kControl || t == kUnknown) && !p.empty()) impl->literals.emplace_back(p, static_cast<int>(id));
  }
  std::stable_sort(impl->literals.begin(), impl->literals.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });

  // Load through the module with the dummy prefix and whitespace squeezing switched off: append
  // NormalizerSpec { add_dummy_prefix(3) = false; remove_extra_whitespaces(4) = false } as field 3.
  static const char kOverride[] = {0x1a, 0x04, 0x18, 0x00, 0x20, 0x00};
  proto.append(kOverride, sizeof kOverride);
  static std::atomic<unsigned> counter{0};
  const fs::path tmp = fs::temp_directory_path() / ("grm_spm_" + std::to_string(::getpid()) + "_" +
                                                    std::to_string(counter++) + ".model");
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(proto.data(), static_cast<std::streamsize>(proto.size()));
    if (!out) throw Error(path + ": cannot write temporary copy " + tmp.string());
  }
  char err[512] = {0};
  const Module* m = nullptr;
  try {
    m = &module();
  } catch (...) {
    std::error_code ec;
    fs::remove(tmp, ec);
    throw;
  }
  impl->handle = m->load(tmp.c_str(), err, sizeof err);
  std::error_code ec;
  fs::remove(tmp, ec);
  if (!impl->handle) throw Error(path + ": sentencepiece cannot load it: " + err);
  if (m->vocab_size(impl->handle) != static_cast<int>(impl->pieces.size()))
    throw Error(path + ": piece count mismatch between the protobuf and sentencepiece");
  impl->bos = m->bos_id(impl->handle);
  impl->eos = m->eos_id(impl->handle);
  impl->unk = m->unk_id(impl->handle);

  SentencePieceTokenizer t;
  t.impl_ = std::move(impl);
  return t;
}

void SentencePieceTokenizer::train(const std::string& args) {
  char err[1024] = {0};
  if (module().train(args.c_str(), err, sizeof err) != 0) throw Error(std::string("sentencepiece training failed: ") + err);
}

std::vector<int> SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    const std::pair<std::string, int>* hit = nullptr;
    for (const auto& lit : impl_->literals)
      if (text.compare(i, lit.first.size(), lit.first) == 0) {
        hit = &lit;
        break;
      }
    if (!hit) {
      ++i;
      continue;
    }
    if (i > start) impl_->encode_text(text.substr(start, i - start), out);
    out.push_back(hit->second);
    i += hit->first.size();
    start = i;
  }
  if (text.size() > start) impl_->encode_text(text.substr(start), out);
  return out;
}

std::string SentencePieceTokenizer::token_bytes(int id) const {
  if (id < 0 || id >= vocab_size())
    throw Error(impl_->path + ": token id " + std::to_string(id) + " is out of range (size " +
                std::to_string(vocab_size()) + ")");
  const std::string& p = impl_->pieces[id];
  const int t = impl_->types[id];
  if (t == kByte && p.size() == 6) return std::string(1, static_cast<char>(std::stoi(p.substr(3, 2), nullptr, 16)));
  if (t == kControl || t == kUnknown || !impl_->escape_whitespaces) return p;
  std::string out;
  static const std::string kSpace = "\xe2\x96\x81";  // U+2581
  for (size_t i = 0; i < p.size();) {
    if (p.compare(i, kSpace.size(), kSpace) == 0) {
      out += ' ';
      i += kSpace.size();
    } else {
      out += p[i++];
    }
  }
  return out;
}

int SentencePieceTokenizer::vocab_size() const { return static_cast<int>(impl_->pieces.size()); }
std::optional<int> SentencePieceTokenizer::bos_id() const {
  return impl_->bos >= 0 ? std::optional<int>(impl_->bos) : std::nullopt;
}
std::optional<int> SentencePieceTokenizer::eos_id() const {
  return impl_->eos >= 0 ? std::optional<int>(impl_->eos) : std::nullopt;
}
std::optional<int> SentencePieceTokenizer::token_to_id(std::string_view piece) const {
  auto it = impl_->piece_id.find(std::string(piece));
  return it == impl_->piece_id.end() ? std::nullopt : std::optional<int>(it->second);
}
bool SentencePieceTokenizer::adds_dummy_prefix() const { return impl_->add_dummy_prefix; }
std::string SentencePieceTokenizer::normalizer_name() const { return impl_->normalizer; }

}  // namespace grm::engine
