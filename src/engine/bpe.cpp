// Byte-level BPE encoding: added-token matching, pre-tokenization, merging by rank with a word cache.
#include <algorithm>
#include <queue>

#include "core/error.h"
#include "engine/bpe.h"
#include "engine/bpe_state.h"

namespace grm::engine {
namespace {

using bpe::AddedMatcher;
using bpe::pair_key;

struct Segment {
  std::string_view text;
  int id = -1;  // an added token's id, or -1 for plain text
};

void split_added(std::string_view text, const AddedMatcher& m, std::vector<Segment>& out) {
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    if (const BpeAddedToken* t = m.match_at(text, i)) {
      if (i > start) out.push_back({text.substr(start, i - start), -1});
      out.push_back({{}, t->id});
      i += t->content.size();
      start = i;
    } else {
      ++i;
    }
  }
  if (text.size() > start) out.push_back({text.substr(start), -1});
}

}  // namespace

// ---- encoding ----------------------------------------------------------------------------------------

std::vector<int> BpeTokenizer::encode_word(std::string_view w) const {
  const State& s = *s_;
  if (w.size() == 1) return {s.byte_id[static_cast<unsigned char>(w[0])]};
  if (s.ignore_merges) {
    auto it = s.vocab.find(std::string(w));
    if (it != s.vocab.end()) return {it->second};
  }
  struct Sym {
    int id, prev, next;
  };
  const int n = static_cast<int>(w.size());
  std::vector<Sym> sym(n);
  for (int i = 0; i < n; ++i) sym[i] = {s.byte_id[static_cast<unsigned char>(w[i])], i - 1, i + 1 < n ? i + 1 : -1};
  using Item = std::pair<int, int>;  // (rank, position): lowest rank first, then leftmost
  std::priority_queue<Item, std::vector<Item>, std::greater<Item>> heap;
  const auto rank_at = [&](int p) -> const std::pair<int, int>* {
    const int q = sym[p].next;
    if (q < 0) return nullptr;
    auto it = s.merges.find(pair_key(sym[p].id, sym[q].id));
    return it == s.merges.end() ? nullptr : &it->second;
  };
  const auto push = [&](int p) {
    if (const auto* r = rank_at(p)) heap.emplace(r->first, p);
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const auto [rank, p] = heap.top();
    heap.pop();
    if (sym[p].id < 0) continue;
    const auto* r = rank_at(p);
    if (!r || r->first != rank) continue;  // stale entry
    const int q = sym[p].next;
    sym[p].id = r->second;
    sym[q].id = -1;
    sym[p].next = sym[q].next;
    if (sym[q].next >= 0) sym[sym[q].next].prev = p;
    if (sym[p].prev >= 0) push(sym[p].prev);
    push(p);
  }
  std::vector<int> out;
  for (int p = 0; p >= 0; p = sym[p].next) out.push_back(sym[p].id);
  return out;
}

std::vector<int> BpeTokenizer::encode(std::string_view text) const {
  const State& s = *s_;
  std::vector<Segment> first, segs;
  split_added(text, s.raw_matcher, first);
  if (s.has_normalized) {
    for (const auto& seg : first) {
      if (seg.id >= 0) segs.push_back(seg);
      else split_added(seg.text, s.normalized_matcher, segs);
    }
  } else {
    segs = std::move(first);
  }
  constexpr size_t kMaxCachedWord = 64, kMaxCacheEntries = 1 << 18;
  std::vector<int> out;
  out.reserve(text.size() / 3 + 4);
  for (const auto& seg : segs) {
    if (seg.id >= 0) {
      out.push_back(seg.id);
      continue;
    }
    const bpe::Words words = s.pre->split(seg.text);
    for (const auto& word : words.list) {
      const bool cacheable = word.text.size() <= kMaxCachedWord && word.text.size() > 1;
      if (cacheable) {
        std::lock_guard<std::mutex> lock(cache_->mu);
        auto it = cache_->words.find(word.text);
        if (it != cache_->words.end()) {
          out.insert(out.end(), it->second.begin(), it->second.end());
          continue;
        }
      }
      std::vector<int> ids = encode_word(word.text);
      out.insert(out.end(), ids.begin(), ids.end());
      if (cacheable) {
        std::lock_guard<std::mutex> lock(cache_->mu);
        if (cache_->words.size() >= kMaxCacheEntries) cache_->words.clear();
        cache_->words.emplace(word.text, std::move(ids));
      }
    }
  }
  return out;
}

// ---- queries -------------------------------------------------------------------------------------------

std::string BpeTokenizer::token_bytes(int id) const {
  if (id < 0 || id >= static_cast<int>(s_->kind.size()) || s_->kind[id] == 0)
    throw Error("token id " + std::to_string(id) + " is not in the vocabulary (size " + std::to_string(vocab_size()) + ")");
  return s_->bytes[id];
}

int BpeTokenizer::vocab_size() const { return static_cast<int>(s_->kind.size()); }

std::optional<int> BpeTokenizer::token_to_id(std::string_view token) const {
  auto a = s_->added_by_content.find(std::string(token));
  if (a != s_->added_by_content.end()) return a->second;
  if (auto raw = bpe::unicode_to_bytes(token)) {
    auto it = s_->vocab.find(*raw);
    if (it != s_->vocab.end()) return it->second;
  }
  auto odd = s_->odd_spelling.find(std::string(token));
  if (odd != s_->odd_spelling.end()) return odd->second;
  return std::nullopt;
}

const std::vector<BpeAddedToken>& BpeTokenizer::added_tokens() const { return s_->added; }
size_t BpeTokenizer::num_merges() const { return s_->merge_list.size(); }

}  // namespace grm::engine
