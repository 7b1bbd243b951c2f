#include "engine/cpu_dtype.h"

#include "engine/weights.h"

namespace grm::engine {

bool cpu_has_native_bf16() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16") || __builtin_cpu_supports("amx-bf16");
}

c10::ScalarType fast_compute_dtype() { return cpu_has_native_bf16() ? c10::kBFloat16 : c10::kFloat; }

c10::ScalarType resolve_compute_dtype(const std::string& name) {
  return name == "auto" ? fast_compute_dtype() : dtype_from_name(name);
}

}  // namespace grm::engine
