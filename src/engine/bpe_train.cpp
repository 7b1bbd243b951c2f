// Byte-level BPE training: word counts, then greedy pair merges with incrementally updated pair counts
// (the algorithm of HF's BpeTrainer: a lazy max-heap of pair counts and, per pair, the words holding it).
#include <algorithm>
#include <queue>
#include <tuple>
#include <unordered_map>

#include "core/error.h"
#include "engine/bpe.h"

namespace grm::engine {
namespace {

uint64_t key_of(int a, int b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

// Cuts out every occurrence of the special tokens (leftmost-longest) and returns the text between them.
std::vector<std::string_view> strip_specials(std::string_view text, const std::vector<std::string>& specials) {
  std::vector<std::string_view> out;
  size_t start = 0;
  for (size_t i = 0; i < text.size();) {
    size_t best = 0;
    for (const auto& sp : specials)
      if (sp.size() > best && text.compare(i, sp.size(), sp) == 0) best = sp.size();
    if (best) {
      if (i > start) out.push_back(text.substr(start, i - start));
      i += best;
      start = i;
    } else {
      ++i;
    }
  }
  if (text.size() > start) out.push_back(text.substr(start));
  return out;
}

struct Candidate {
  int64_t count;
  int a, b;
  // Max-heap order: higher count first, then the smaller (a, b).
  bool operator<(const Candidate& o) const {
    if (count != o.count) return count < o.count;
    return std::tie(a, b) > std::tie(o.a, o.b);
  }
};

void pairs_of(const std::vector<int>& s, std::vector<uint64_t>& out) {
  out.clear();
  for (size_t i = 0; i + 1 < s.size(); ++i) out.push_back(key_of(s[i], s[i + 1]));
  std::sort(out.begin(), out.end());
}

}  // namespace

BpeTokenizer BpeTokenizer::train(const std::vector<std::string>& texts, int vocab_size,
                                 std::vector<std::string> special_tokens, const BpeTrainOptions& options) {
  const int n_special = static_cast<int>(special_tokens.size());
  if (vocab_size < 256 + n_special)
    throw Error("BPE training: vocab_size " + std::to_string(vocab_size) + " is below 256 bytes + " +
                std::to_string(n_special) + " special tokens");
  const bpe::PreTokenizer pre = bpe::PreTokenizer::split_then_byte_level(options.pattern);

  // 1. Word counts.
  std::unordered_map<std::string, int64_t> counts;
  for (const auto& text : texts)
    for (auto seg : strip_specials(text, special_tokens))
      for (const auto& w : pre.split(seg).list) ++counts[std::string(w.text)];
  std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
  counts.clear();
  std::sort(sorted.begin(), sorted.end());
  std::vector<std::vector<int>> words(sorted.size());
  std::vector<int64_t> freq(sorted.size());
  for (size_t w = 0; w < sorted.size(); ++w) {
    for (unsigned char c : sorted[w].first) words[w].push_back(c);
    freq[w] = sorted[w].second;
  }
  sorted.clear();

  // 2. Initial pair counts and, per pair, the words it occurs in.
  std::unordered_map<uint64_t, int64_t> pair_count;
  std::unordered_map<uint64_t, std::vector<int>> where;
  for (size_t w = 0; w < words.size(); ++w)
    for (size_t i = 0; i + 1 < words[w].size(); ++i) {
      const uint64_t k = key_of(words[w][i], words[w][i + 1]);
      pair_count[k] += freq[w];
      auto& list = where[k];
      if (list.empty() || list.back() != static_cast<int>(w)) list.push_back(static_cast<int>(w));
    }
  std::priority_queue<Candidate> heap;
  for (const auto& [k, c] : pair_count) heap.push({c, static_cast<int>(k >> 32), static_cast<int>(k & 0xffffffffu)});

  // 3. Merge until the vocabulary is full.
  std::vector<std::string> bytes(256);
  for (int b = 0; b < 256; ++b) bytes[b] = std::string(1, static_cast<char>(b));
  std::unordered_map<std::string, int> id_of;
  for (int b = 0; b < 256; ++b) id_of.emplace(bytes[b], b);
  const int max_tokens = vocab_size - n_special;
  std::vector<std::pair<int, int>> merges;
  std::vector<int> stamp(words.size(), -1);
  std::vector<uint64_t> before, after, changed;
  std::vector<int> merged;
  const int64_t min_count = std::max<int64_t>(1, options.min_frequency);
  for (int step = 0; static_cast<int>(bytes.size()) < max_tokens && !heap.empty(); ++step) {
    const Candidate top = heap.top();
    heap.pop();
    const uint64_t k = key_of(top.a, top.b);
    const auto it = pair_count.find(k);
    const int64_t current = it == pair_count.end() ? 0 : it->second;
    if (current != top.count) {  // stale entry: requeue with the current count
      if (current > 0) heap.push({current, top.a, top.b});
      continue;
    }
    if (current < min_count) break;
    const std::string ab = bytes[top.a] + bytes[top.b];
    int new_id;
    if (auto f = id_of.find(ab); f != id_of.end()) {
      new_id = f->second;
    } else {
      new_id = static_cast<int>(bytes.size());
      bytes.push_back(ab);
      id_of.emplace(ab, new_id);
    }
    merges.emplace_back(top.a, top.b);

    std::vector<int> affected = std::move(where[k]);
    where.erase(k);
    changed.clear();
    for (int w : affected) {
      if (stamp[w] == step) continue;
      stamp[w] = step;
      std::vector<int>& s = words[w];
      merged.clear();
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == top.a && s[i + 1] == top.b) {
          merged.push_back(new_id);
          ++i;
        } else {
          merged.push_back(s[i]);
        }
      }
      if (merged.size() == s.size()) continue;  // pair no longer in this word
      pairs_of(s, before);
      pairs_of(merged, after);
      s.swap(merged);
      // Multiset difference of the sorted pair lists.
      size_t i = 0, j = 0;
      while (i < before.size() || j < after.size()) {
        if (j == after.size() || (i < before.size() && before[i] < after[j])) {
          pair_count[before[i++]] -= freq[w];
        } else if (i == before.size() || after[j] < before[i]) {
          const uint64_t nk = after[j++];
          pair_count[nk] += freq[w];
          auto& list = where[nk];
          if (list.empty() || list.back() != w) list.push_back(w);
          changed.push_back(nk);
        } else {
          ++i, ++j;
        }
      }
    }
    pair_count.erase(k);
    std::sort(changed.begin(), changed.end());
    changed.erase(std::unique(changed.begin(), changed.end()), changed.end());
    for (uint64_t nk : changed) {
      const int64_t c = pair_count[nk];
      if (c > 0) heap.push({c, static_cast<int>(nk >> 32), static_cast<int>(nk & 0xffffffffu)});
    }
  }
  return from_merges(merges, special_tokens, options.pattern);
}

}  // namespace grm::engine
