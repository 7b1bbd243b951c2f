// Internal to src/synth: the draft a domain builds before it becomes a SynthRecord, and shared helpers.
#pragma once
#include <array>
#include <functional>
#include <string>
#include <vector>

#include "core/rng.h"

namespace grm::synth::detail {

constexpr int kDims = 4;
using Subs = std::array<int, kDims>;  // per-dimension sub-scores 1..10 of one response

// One candidate response with its analysis and sub-scores on the domain's rubric dimensions.
struct Cand {
  std::string text;
  std::string analysis;  // short, no trailing period, never mentions response numbers
  Subs sub{10, 10, 10, 10};
  bool ok = true;  // correct / acceptable: the n = 1 label
};

// One drawn principle: which rubric dimension it scores, its wording, and its weight in percent.
struct Crit {
  int dim = 0;
  std::string text;
  int weight = 0;
};

struct Draft {
  std::string query;
  std::string working;      // a worked check written once before the per-response analyses ("" = none)
  std::string key;          // '|'-separated held-out entities
  std::vector<Crit> crits;  // display order
  std::vector<Cand> cands;  // cands[0]: the intended best (ok); the rest flawed
};

// A domain: builds a draft with `count` candidates. cands[0] is flawless on the drawn principles; the
// others score strictly below it. With `single`, the one extra candidate must be plainly incorrect
// (ok = false), because an n = 1 record labels it 0.
using Builder = std::function<Draft(Rng& rng, bool test, int count, bool single)>;

Draft build_arith(Rng& rng, bool test, int count, bool single);
Draft build_string(Rng& rng, bool test, int count, bool single);
Draft build_instruct(Rng& rng, bool test, int count, bool single);
Draft build_help(Rng& rng, bool test, int count, bool single);
Draft build_safety(Rng& rng, bool test, int count, bool single);

// Which pool one key entity belongs to: "train", "test", or "".
std::string key_split_arith(const std::string& part);
std::string key_split_string(const std::string& part);
std::string key_split_instruct(const std::string& part);
std::string key_split_help(const std::string& part);
std::string key_split_safety(const std::string& part);

// ---- helpers -----------------------------------------------------------------------------------

template <class T>
const T& pick(Rng& rng, const std::vector<T>& v) {
  return v[rng.below(v.size())];
}
inline int uniform_int(Rng& rng, int lo, int hi) {  // inclusive
  return lo + static_cast<int>(rng.below(static_cast<uint64_t>(hi - lo + 1)));
}
// Train/dev pool or test pool.
inline const std::vector<std::string>& pool(bool test, const std::vector<std::string>& train,
                                            const std::vector<std::string>& held_out) {
  return test ? held_out : train;
}
bool contains(const std::vector<std::string>& v, const std::string& s);
std::string pool_split(const std::string& s, const std::vector<std::string>& train,
                       const std::vector<std::string>& test);

// `k` weights in multiples of 10, summing to 100, each >= 10, the first >= first_min.
std::vector<int> draw_weights(Rng& rng, int k, int first_min);
// Principles for `dims` (dims[0] gets the first, possibly larger, weight), each worded by a random pick
// from phrasings[dim]; the display order is shuffled.
std::vector<Crit> draw_crits(Rng& rng, const std::vector<int>& dims,
                             const std::vector<std::vector<std::string>>& phrasings, int first_min);
// How many principles to draw: 2 or 3, only 2 when four responses are shown (keeps the text short).
int crit_count(Rng& rng, int count);
bool has_dim(const std::vector<Crit>& crits, int dim);

// round(sum_i w_i * sub[dim_i] / 100), half up, clamped to 1..10.
int weighted_score(const std::vector<Crit>& crits, const Subs& sub);

// Appends candidates from make() until d.cands has `count`: each must score strictly below cands[0] and
// have a text not seen yet. Returns false after 300 failed tries.
bool fill(Rng& rng, Draft& d, int count, const std::function<Cand(Rng&)>& make);

}  // namespace grm::synth::detail
