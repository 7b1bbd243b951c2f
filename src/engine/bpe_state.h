// Internal to the byte-level BPE implementation (bpe.cpp, bpe_json.cpp): the shared tables.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "engine/bpe.h"
#include "engine/bpe_pretokenizer.h"

namespace grm::engine::bpe {

inline uint64_t pair_key(int a, int b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }

// Leftmost-longest literal matching of a set of added tokens.
struct AddedMatcher {
  std::array<std::vector<const BpeAddedToken*>, 256> by_first;  // longest first

  void add(const BpeAddedToken* t) {
    if (t->content.empty()) return;
    auto& v = by_first[static_cast<unsigned char>(t->content[0])];
    v.push_back(t);
    std::stable_sort(v.begin(), v.end(), [](auto* a, auto* b) { return a->content.size() > b->content.size(); });
  }
  const BpeAddedToken* match_at(std::string_view s, size_t i) const {
    for (const auto* t : by_first[static_cast<unsigned char>(s[i])])
      if (s.compare(i, t->content.size(), t->content) == 0) return t;
    return nullptr;
  }
};

}  // namespace grm::engine::bpe

namespace grm::engine {

struct BpeTokenizer::State {
  std::vector<std::string> bytes;         // id → raw bytes
  std::vector<std::string> spelling;      // id → vocab spelling or added content
  std::vector<uint8_t> kind;              // 0: no token, 1: model vocab, 2: added token
  std::vector<uint8_t> in_vocab;          // listed in model.vocab (an added token may be too)
  std::unordered_map<std::string, int> vocab;  // raw bytes → model vocab id
  std::unordered_map<std::string, int> odd_spelling;  // vocab spellings outside the byte-level alphabet
  std::array<int, 256> byte_id{};
  std::unordered_map<uint64_t, std::pair<int, int>> merges;  // (left, right) → (rank, merged id)
  std::vector<std::pair<int, int>> merge_list;               // in rank order
  std::vector<BpeAddedToken> added;                          // sorted by id
  std::unordered_map<std::string, int> added_by_content;
  bpe::AddedMatcher raw_matcher, normalized_matcher;
  bool has_normalized = false;
  std::optional<bpe::PreTokenizer> pre;
  bool ignore_merges = false;
  nlohmann::json normalizer, post_processor, decoder;
};

struct BpeTokenizer::Cache {
  struct Hash {  // heterogeneous lookup: find(string_view) without building a string
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::mutex mu;
  std::unordered_map<std::string, std::vector<int>, Hash, std::equal_to<>> words;
};

}  // namespace grm::engine
