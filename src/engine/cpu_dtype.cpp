#include "engine/cpu_dtype.h"

#include "engine/decode_attention.h"
#include "engine/weights.h"

#if defined(__x86_64__)
#include "engine/avx2.h"
#endif

namespace grm::engine {

bool cpu_has_native_bf16() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
#else
  return false;  // not measured elsewhere: float32 is the safe default
#endif
}

c10::ScalarType fast_compute_dtype() { return cpu_has_native_bf16() ? c10::kBFloat16 : c10::kFloat; }

c10::ScalarType resolve_compute_dtype(const std::string& name) {
  return name == "auto" ? fast_compute_dtype() : dtype_from_name(name);
}

c10::ScalarType resolve_kv_dtype(const std::string& name, c10::ScalarType compute, int64_t head_dim) {
  if (name != "auto") return dtype_from_name(name);
#if defined(__x86_64__)
  if (compute == c10::kFloat && avx2::cpu_has_avx2() && head_dim % kDecodeAttentionHeadDimMultiple == 0)
    return c10::kHalf;
#endif
  return compute;
}

}  // namespace grm::engine
