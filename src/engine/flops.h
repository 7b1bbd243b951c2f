// Matmul FLOPs of the model's work (2 per multiply-add), for benchmarks: the rate a decode reaches and the least
// time a request could take at a given GEMM rate. No torch here. Norms, activations, softmax and sampling are not
// counted, so a time derived from these is a lower bound.
#pragma once
#include <cstdint>

#include "engine/config.h"

namespace grm::engine {

// The weight products of one position through every block: q, k, v, o and the MLP's gate, up and down.
double block_flops_per_token(const ModelConfig& c);
// The LM head of one position (hidden × vocab).
double head_flops_per_token(const ModelConfig& c);
// Attention of one position over `context` positions (itself included) in every layer: scores and the weighted
// sum of values, for every query head. A sliding window caps the context.
double attention_flops_per_token(const ModelConfig& c, int64_t context);

// One decoded token at `context` positions: the blocks, the head and attention.
double decode_flops_per_token(const ModelConfig& c, int64_t context);

// A request's least matmul work: `prefill_tokens` positions through the blocks (their attention and the head not
// counted), then `decode_tokens` decoded tokens, each through the blocks, the head and attention over
// `mean_context` positions.
double request_flops_lower_bound(const ModelConfig& c, int64_t prefill_tokens, int64_t decode_tokens,
                                 int64_t mean_context);

}  // namespace grm::engine
