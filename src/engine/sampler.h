// Turning one row of logits into a token: greedy, temperature, top-k, top-p, with a caller-owned RNG.
#pragma once
#include <cstdint>

#include "core/generator.h"
#include "core/rng.h"

namespace grm::engine {

// `logits` points at `vocab` float32 values. temperature <= 0 → argmax (lowest id among equal maxima).
// Otherwise softmax(logits / T) restricted to the top_k most likely tokens (0 = all), then to the smallest
// set whose probability reaches top_p (1 = all), and one draw from `rng`.
int sample_token(const float* logits, int64_t vocab, const SamplingParams& params, Rng& rng);

}  // namespace grm::engine
