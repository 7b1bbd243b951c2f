#include "engine/cpu_dtype.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "core/error.h"

namespace {

// The flags line of /proc/cpuinfo (the kernel's view of cpuid), padded with spaces for whole-word search.
std::string cpuinfo_flags() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("flags", 0) == 0) return line.substr(line.find(':') + 1) + " ";
  return "";
}

}  // namespace

// The cpuid check agrees with the flags the kernel reports, on whatever CPU runs the test.
TEST(CpuDtype, NativeBf16MatchesTheKernelsCpuFlags) {
  const std::string flags = cpuinfo_flags();
  if (flags.empty()) GTEST_SKIP() << "no /proc/cpuinfo flags line";
  const bool listed = flags.find(" avx512_bf16 ") != std::string::npos || flags.find(" amx_bf16 ") != std::string::npos;
  EXPECT_EQ(grm::engine::cpu_has_native_bf16(), listed) << flags;
}

TEST(CpuDtype, AutoPicksBf16OnlyWithNativeBf16) {
  using grm::engine::resolve_compute_dtype;
  const auto want = grm::engine::cpu_has_native_bf16() ? c10::kBFloat16 : c10::kFloat;
  EXPECT_EQ(resolve_compute_dtype("auto"), want);
  EXPECT_EQ(grm::engine::fast_compute_dtype(), want);
  EXPECT_EQ(resolve_compute_dtype("f32"), c10::kFloat);  // explicit names win
  EXPECT_EQ(resolve_compute_dtype("bf16"), c10::kBFloat16);
  EXPECT_THROW(resolve_compute_dtype("fastest"), grm::Error);
}

TEST(CpuDtype, AutoKvDtypeIsFloat16OnlyForFloat32ComputeOnAvx2) {
  using grm::engine::resolve_kv_dtype;
  bool avx2 = false;
#if defined(__x86_64__)
  const std::string flags = cpuinfo_flags();
  avx2 = flags.find(" avx2 ") != std::string::npos && flags.find(" fma ") != std::string::npos &&
         flags.find(" f16c ") != std::string::npos;
#endif
  EXPECT_EQ(resolve_kv_dtype("auto", c10::kFloat, 64), avx2 ? c10::kHalf : c10::kFloat);
  EXPECT_EQ(resolve_kv_dtype("auto", c10::kFloat, 12), c10::kFloat);  // head dim the kernel cannot take
  EXPECT_EQ(resolve_kv_dtype("auto", c10::kBFloat16, 64), c10::kBFloat16);
  EXPECT_EQ(resolve_kv_dtype("f32", c10::kFloat, 64), c10::kFloat);  // explicit names win
  EXPECT_EQ(resolve_kv_dtype("f16", c10::kBFloat16, 12), c10::kHalf);
  EXPECT_EQ(resolve_kv_dtype("bf16", c10::kFloat, 64), c10::kBFloat16);
  EXPECT_THROW(resolve_kv_dtype("int8", c10::kFloat, 64), grm::Error);
}
