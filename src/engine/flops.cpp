#include "engine/flops.h"

#include <algorithm>

namespace grm::engine {

double block_flops_per_token(const ModelConfig& c) {
  const double d = static_cast<double>(c.hidden_size), hd = static_cast<double>(c.head_dim);
  const double q = static_cast<double>(c.num_attention_heads) * hd, kv = static_cast<double>(c.num_key_value_heads) * hd;
  const double per_layer = d * q + 2 * d * kv + q * d + 3 * d * static_cast<double>(c.intermediate_size);
  return 2.0 * per_layer * static_cast<double>(c.num_hidden_layers);
}

double head_flops_per_token(const ModelConfig& c) {
  return 2.0 * static_cast<double>(c.hidden_size) * static_cast<double>(c.vocab_size);
}

double attention_flops_per_token(const ModelConfig& c, int64_t context) {
  if (c.sliding_window > 0) context = std::min(context, c.sliding_window);
  const double per_layer = 4.0 * static_cast<double>(c.num_attention_heads * c.head_dim) * static_cast<double>(context);
  return per_layer * static_cast<double>(c.num_hidden_layers);
}

double decode_flops_per_token(const ModelConfig& c, int64_t context) {
  return block_flops_per_token(c) + head_flops_per_token(c) + attention_flops_per_token(c, context);
}

double request_flops_lower_bound(const ModelConfig& c, int64_t prefill_tokens, int64_t decode_tokens,
                                 int64_t mean_context) {
  return static_cast<double>(prefill_tokens) * block_flops_per_token(c) +
         static_cast<double>(decode_tokens) * decode_flops_per_token(c, mean_context);
}

}  // namespace grm::engine
