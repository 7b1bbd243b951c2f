#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

namespace grm::engine {

namespace {

int argmax(const float* x, int64_t n) {
  int64_t best = 0;
  for (int64_t i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return static_cast<int>(best);
}

}  // namespace

int sample_token(const float* logits, int64_t vocab, const SamplingParams& params, Rng& rng) {
  if (params.temperature <= 0) return argmax(logits, vocab);
  const double inv_t = 1.0 / params.temperature;
  const float top = logits[argmax(logits, vocab)];
  const bool filtered = (params.top_k > 0 && params.top_k < vocab) || params.top_p < 1.0;
  if (!filtered) {
    // One float exp per token into a per-thread buffer, then the draw walks the buffer: a decode step
    // samples every row of the batch, so this runs k times per generated position.
    thread_local std::vector<float> weights;
    weights.resize(static_cast<size_t>(vocab));
    const auto inv_tf = static_cast<float>(inv_t);
    double total = 0;
    for (int64_t i = 0; i < vocab; ++i) total += weights[static_cast<size_t>(i)] = std::exp((logits[i] - top) * inv_tf);
    double u = rng.uniform() * total;
    for (int64_t i = 0; i < vocab; ++i) {
      u -= weights[static_cast<size_t>(i)];
      if (u < 0) return static_cast<int>(i);
    }
    return argmax(logits, vocab);  // rounding left u ≥ 0: fall back to the mode
  }
  std::vector<int> ids(static_cast<size_t>(vocab));
  std::iota(ids.begin(), ids.end(), 0);
  size_t keep = static_cast<size_t>(vocab);
  if (params.top_k > 0 && params.top_k < vocab) keep = static_cast<size_t>(params.top_k);
  // Candidates sorted by logit (ties by id), only as many as needed.
  std::partial_sort(ids.begin(), ids.begin() + static_cast<long>(keep), ids.end(),
                    [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); });
  std::vector<double> p(keep);
  double total = 0;
  for (size_t i = 0; i < keep; ++i) total += p[i] = std::exp((logits[ids[i]] - top) * inv_t);
  if (params.top_p < 1.0) {
    double cum = 0;
    size_t cut = keep;
    for (size_t i = 0; i < keep; ++i) {
      cum += p[i] / total;
      if (cum >= params.top_p) {
        cut = i + 1;
        break;
      }
    }
    keep = cut;
    total = std::accumulate(p.begin(), p.begin() + static_cast<long>(keep), 0.0);
  }
  double u = rng.uniform() * total;
  for (size_t i = 0; i < keep; ++i) {
    u -= p[i];
    if (u < 0) return ids[i];
  }
  return ids[0];
}

}  // namespace grm::engine
