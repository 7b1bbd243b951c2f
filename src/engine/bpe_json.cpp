// Byte-level BPE: tokenizer.json loading (with the BOS/EOS rule) and saving, and the tokenizers built
// from merges (byte_level(), and train()'s output).
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "core/error.h"
#include "core/fs.h"
#include "engine/bpe.h"
#include "engine/bpe_state.h"

namespace grm::engine {
namespace {

using bpe::pair_key;

const char* const kEosNames[] = {"<|endoftext|>", "<|end_of_text|>", "</s>",    "<eos>",
                                 "<|eot_id|>",    "<|im_end|>",      "<|end|>", "<｜end▁of▁sentence｜>"};
const char* const kBosNames[] = {"<|begin_of_text|>", "<s>", "<bos>", "<|startoftext|>", "<｜begin▁of▁sentence｜>"};

template <size_t N>
bool named(const std::string& s, const char* const (&names)[N]) {
  for (const char* n : names)
    if (s == n) return true;
  return false;
}

// null, NFC (accepted, not applied: see bpe.h), or a Sequence of those (DeepSeek-V3 has an empty one).
bool normalizer_supported(const nlohmann::json& n) {
  if (n.is_null()) return true;
  if (!n.is_object()) return false;
  const std::string type = n.value("type", "");
  if (type == "NFC") return true;
  if (type != "Sequence" || !n.contains("normalizers") || !n["normalizers"].is_array()) return false;
  for (const auto& m : n["normalizers"])
    if (!normalizer_supported(m)) return false;
  return true;
}

// j[key] by reference (value() would copy a 10 MB vocabulary), or null when absent.
const nlohmann::json& member(const nlohmann::json& j, const char* key) {
  static const nlohmann::json null;
  if (!j.is_object()) return null;
  auto it = j.find(key);
  return it == j.end() ? null : *it;
}

bool is_id(const nlohmann::json& v) {
  return v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= 0x7fffffff;
}

nlohmann::ordered_json ordered(const nlohmann::json& j) { return nlohmann::ordered_json::parse(j.dump()); }

}  // namespace

// ---- loading ---------------------------------------------------------------------------------------

BpeTokenizer BpeTokenizer::from_json(const nlohmann::json& j, const std::string& origin) {
  const auto fail = [&](const std::string& msg) -> void { throw Error(origin + ": " + msg); };
  if (!j.is_object()) fail("not a JSON object");
  auto st = std::make_shared<State>();
  const auto& model = member(j, "model");
  if (!model.is_object()) fail("missing \"model\"");
  if (model.contains("type") && model["type"] != "BPE")
    fail("model.type is " + model["type"].dump() + "; only byte-level \"BPE\" is supported here");
  if (model.contains("dropout") && !model["dropout"].is_null()) fail("model.dropout must be null");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(k) && !model[k].is_null() && model[k] != "") fail(std::string("model.") + k + " is not supported");
  st->ignore_merges = model.value("ignore_merges", false);

  // Normalizer, decoder.
  st->normalizer = j.value("normalizer", nlohmann::json());
  if (!normalizer_supported(st->normalizer))
    fail("unsupported normalizer " + st->normalizer.dump() + " (null, NFC or a Sequence of those only)");
  st->decoder = j.value("decoder", nlohmann::json());
  if (!st->decoder.is_null() && st->decoder.value("type", "") != "ByteLevel")
    fail("unsupported decoder " + st->decoder.dump() + " (byte-level BPE needs ByteLevel)");
  st->post_processor = j.value("post_processor", nlohmann::json());
  try {
    st->pre = bpe::PreTokenizer::from_json(j.value("pre_tokenizer", nlohmann::json()));
  } catch (const Error& e) {
    fail(e.what());
  }

  // Added tokens.
  const auto& added = member(j, "added_tokens");
  if (!added.is_null() && !added.is_array()) fail("\"added_tokens\" is not an array");
  for (const auto& a : added) {
    if (!a.is_object() || !a.contains("id") || !is_id(a["id"]) || !a.contains("content") ||
        !a["content"].is_string())
      fail("bad added token " + a.dump());
    BpeAddedToken t;
    t.id = a["id"].get<int>();
    t.content = a["content"].get<std::string>();
    t.special = a.value("special", false);
    t.normalized = a.value("normalized", !t.special);
    t.single_word = a.value("single_word", false);
    t.lstrip = a.value("lstrip", false);
    t.rstrip = a.value("rstrip", false);
    if (t.content.empty()) fail("added token " + std::to_string(t.id) + " has empty content");
    st->added.push_back(std::move(t));
  }
  std::sort(st->added.begin(), st->added.end(), [](const auto& a, const auto& b) { return a.id < b.id; });

  // Vocab.
  const auto& vocab = member(model, "vocab");
  if (!vocab.is_object()) fail("model.vocab is not an object");
  int max_id = -1;
  for (const auto& [tok, id] : vocab.items()) {
    if (!is_id(id)) fail("model.vocab['" + tok + "'] is not a valid id");
    max_id = std::max(max_id, id.get<int>());
  }
  for (const auto& t : st->added) max_id = std::max(max_id, t.id);
  st->bytes.resize(max_id + 1);
  st->spelling.resize(max_id + 1);
  st->kind.assign(max_id + 1, 0);
  st->in_vocab.assign(max_id + 1, 0);
  std::unordered_map<std::string, int> spell_id;  // vocab spelling → id, for the merges
  spell_id.reserve(vocab.size());
  st->vocab.reserve(vocab.size());
  for (const auto& [tok, idj] : vocab.items()) {
    const int id = idj.get<int>();
    if (st->kind[id]) fail("model.vocab: id " + std::to_string(id) + " used twice");
    // Spellings outside the byte-level alphabet (rare: literal special tokens) stand for their own text.
    auto raw = bpe::unicode_to_bytes(tok);
    st->bytes[id] = raw ? *raw : tok;
    st->spelling[id] = tok;
    st->kind[id] = 1;
    st->in_vocab[id] = 1;
    if (raw) st->vocab.emplace(*raw, id);
    else st->odd_spelling.emplace(tok, id);
    spell_id.emplace(tok, id);
  }
  for (const auto& t : st->added) {
    if (st->kind[t.id] == 2) fail("added_tokens: id " + std::to_string(t.id) + " used twice");
    st->bytes[t.id] = t.content;  // an added token with a vocab id too decodes to its content
    if (!st->in_vocab[t.id]) st->spelling[t.id] = t.content;
    st->kind[t.id] = 2;
    st->added_by_content.emplace(t.content, t.id);
  }
  for (const auto& t : st->added) {
    if (t.normalized) st->normalized_matcher.add(&t), st->has_normalized = true;
    else st->raw_matcher.add(&t);
  }
  for (int b = 0; b < 256; ++b) {
    auto it = st->vocab.find(std::string(1, static_cast<char>(b)));
    if (it == st->vocab.end())
      fail("model.vocab lacks the byte token '" + bpe::byte_to_unicode()[b] + "' (byte " + std::to_string(b) + ")");
    st->byte_id[b] = it->second;
  }

  // Merges.
  const auto& merges = member(model, "merges");
  if (!merges.is_null() && !merges.is_array()) fail("model.merges is not an array");
  st->merge_list.reserve(merges.size());
  st->merges.reserve(merges.size());
  for (const auto& m : merges) {
    std::string a, b;
    if (m.is_string()) {
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos) fail("bad merge \"" + s + "\"");
      a = s.substr(0, sp);
      b = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get<std::string>();
      b = m[1].get<std::string>();
    } else {
      fail("bad merge " + m.dump());
    }
    const auto ida = spell_id.find(a), idb = spell_id.find(b), idab = spell_id.find(a + b);
    if (ida == spell_id.end() || idb == spell_id.end() || idab == spell_id.end())
      fail("merge '" + a + " " + b + "' uses a token missing from model.vocab");
    const int rank = static_cast<int>(st->merge_list.size());
    st->merge_list.emplace_back(ida->second, idb->second);
    st->merges.emplace(pair_key(ida->second, idb->second), std::make_pair(rank, idab->second));
  }

  BpeTokenizer tok;
  tok.s_ = std::move(st);
  tok.cache_ = std::make_shared<Cache>();
  // BOS / EOS, rule 2 (see bpe.h).
  for (const auto& t : tok.s_->added) {
    if (!t.special) continue;
    if (!tok.eos_ && named(t.content, kEosNames)) tok.eos_ = t.id;
    if (!tok.bos_ && named(t.content, kBosNames)) tok.bos_ = t.id;
  }
  if (!tok.eos_)
    for (const auto& t : tok.s_->added)
      if (t.special && !named(t.content, kBosNames)) {
        tok.eos_ = t.id;
        break;
      }
  return tok;
}

BpeTokenizer BpeTokenizer::from_json_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open: " + std::strerror(errno));
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
  BpeTokenizer tok = from_json(j, path);

  // Rule 1: tokenizer_config.json beside the file.
  const auto cfg_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  std::ifstream cin(cfg_path, std::ios::binary);
  if (cin) {
    nlohmann::json cfg;
    try {
      cfg = nlohmann::json::parse(cin);
    } catch (const nlohmann::json::exception& e) {
      throw Error(cfg_path.string() + ": not valid JSON: " + e.what());
    }
    const auto pick = [&](const char* key, std::optional<int>& slot) {
      if (!cfg.is_object() || !cfg.contains(key)) return;
      const auto& v = cfg[key];
      if (v.is_null()) {
        slot.reset();
        return;
      }
      const std::string name = v.is_string() ? v.get<std::string>() : v.is_object() ? v.value("content", "") : "";
      if (auto id = tok.token_to_id(name)) slot = id;
    };
    pick("bos_token", tok.bos_);
    pick("eos_token", tok.eos_);
  }
  return tok;
}

// ---- saving ----------------------------------------------------------------------------------------------

nlohmann::ordered_json BpeTokenizer::to_json() const {
  const State& s = *s_;
  using oj = nlohmann::ordered_json;
  oj added = oj::array();
  for (const auto& t : s.added)
    added.push_back({{"id", t.id},
                     {"content", t.content},
                     {"single_word", t.single_word},
                     {"lstrip", t.lstrip},
                     {"rstrip", t.rstrip},
                     {"normalized", t.normalized},
                     {"special", t.special}});
  oj vocab = oj::object();
  for (size_t id = 0; id < s.kind.size(); ++id)
    if (s.in_vocab[id]) vocab[s.spelling[id]] = id;
  bool spaces = false;
  for (const auto& [a, b] : s.merge_list)
    spaces = spaces || s.spelling[a].find(' ') != std::string::npos || s.spelling[b].find(' ') != std::string::npos;
  oj merges = oj::array();
  for (const auto& [a, b] : s.merge_list) {
    if (spaces) merges.push_back({s.spelling[a], s.spelling[b]});
    else merges.push_back(s.spelling[a] + " " + s.spelling[b]);
  }
  oj j;
  j["version"] = "1.0";
  j["truncation"] = nullptr;
  j["padding"] = nullptr;
  j["added_tokens"] = std::move(added);
  j["normalizer"] = ordered(s.normalizer);
  j["pre_tokenizer"] = ordered(s.pre->json());
  j["post_processor"] = ordered(s.post_processor);
  j["decoder"] = ordered(s.decoder);
  j["model"] = {{"type", "BPE"},
                {"dropout", nullptr},
                {"unk_token", nullptr},
                {"continuing_subword_prefix", nullptr},
                {"end_of_word_suffix", nullptr},
                {"fuse_unk", false},
                {"byte_fallback", false},
                {"ignore_merges", s.ignore_merges},
                {"vocab", std::move(vocab)},
                {"merges", std::move(merges)}};
  return j;
}

void BpeTokenizer::save(const std::string& path) const { write_file_atomic(path, to_json().dump(2) + "\n"); }

// ---- byte_level / trainer output ------------------------------------------------------------------------

BpeTokenizer BpeTokenizer::from_merges(const std::vector<std::pair<int, int>>& merges,
                                       const std::vector<std::string>& specials, const std::string& pattern) {
  for (size_t i = 0; i < specials.size(); ++i) {
    const std::string& sp = specials[i];
    if (sp.empty()) throw Error("special tokens must not be empty");
    for (size_t k = 0; k < sp.size();) {
      const size_t n = bpe::utf8_char_len(sp, k);
      if (!n) throw Error("special token '" + sp + "' is not valid UTF-8");
      k += n;
    }
    for (size_t k = 0; k < i; ++k)
      if (specials[k] == sp) throw Error("special token '" + sp + "' given twice");
  }
  std::vector<std::string> spell;
  std::unordered_map<std::string, int> ids;
  for (int b = 0; b < 256; ++b) {
    spell.push_back(bpe::byte_to_unicode()[b]);
    ids.emplace(spell.back(), b);
  }
  nlohmann::json jm = nlohmann::json::array();
  for (const auto& [a, b] : merges) {
    std::string ab = spell.at(a) + spell.at(b);
    if (!ids.count(ab)) {
      ids.emplace(ab, static_cast<int>(spell.size()));
      spell.push_back(ab);
    }
    jm.push_back(spell[a] + " " + spell[b]);
  }
  nlohmann::json vocab = nlohmann::json::object();
  for (const auto& [k, v] : ids) vocab[k] = v;
  nlohmann::json added = nlohmann::json::array();
  const int first_special = static_cast<int>(spell.size());
  for (size_t i = 0; i < specials.size(); ++i)
    added.push_back({{"id", first_special + static_cast<int>(i)},
                     {"content", specials[i]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  nlohmann::json j = {
      {"added_tokens", added},
      {"normalizer", nullptr},
      {"pre_tokenizer", bpe::PreTokenizer::split_then_byte_level(pattern).json()},
      {"post_processor", nullptr},
      {"decoder", {{"type", "ByteLevel"}, {"add_prefix_space", true}, {"trim_offsets", true}, {"use_regex", true}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", jm}}}};
  BpeTokenizer t = from_json(j, "generated tokenizer");
  t.bos_.reset();
  t.eos_.reset();
  for (const auto& tok : t.s_->added)  // a BOS-named special stays the bos
    if (named(tok.content, kBosNames)) {
      t.bos_ = tok.id;
      break;
    }
  if (!specials.empty()) t.eos_ = first_special;
  return t;
}

BpeTokenizer BpeTokenizer::byte_level(std::vector<std::string> special_tokens) {
  return from_merges({}, special_tokens, bpe::kQwen2Pattern);
}

}  // namespace grm::engine
