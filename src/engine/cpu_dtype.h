// Which compute dtype is fast on this CPU. bf16 matmuls (oneDNN) are fast only where the CPU has native bf16
// instructions (AVX512_BF16, AMX-BF16); elsewhere oneDNN emulates them. Measured on an AVX2-only AMD EPYC:
// a 1024^3 bf16 matmul at 4 GFLOP/s against 129 GFLOP/s in float32, and `grm score` on the bundled example
// 10x slower in bf16. On a Sapphire Rapids core (AMX) bf16 ran at 716 GFLOP/s against 193 in float32.
#pragma once
#include <string>

#include <c10/core/ScalarType.h>

namespace grm::engine {

// The CPU reports AVX512_BF16 or AMX-BF16 (cpuid, as the kernel exposes it in /proc/cpuinfo flags).
bool cpu_has_native_bf16();

// bf16 where the CPU has native bf16, else float32.
c10::ScalarType fast_compute_dtype();

// "auto" → fast_compute_dtype(); anything else as dtype_from_name (weights.h). Throws grm::Error.
c10::ScalarType resolve_compute_dtype(const std::string& name);

// The KV cache dtype for `name`: "auto" → float16 when computing in float32 on a CPU whose decode attention
// kernel reads float16 natively (x86-64 with AVX2 + FMA + F16C) and the head dim suits that kernel (else each
// step would convert the whole cache); otherwise the compute dtype. Anything else as dtype_from_name. Throws
// grm::Error.
c10::ScalarType resolve_kv_dtype(const std::string& name, c10::ScalarType compute, int64_t head_dim);

}  // namespace grm::engine
