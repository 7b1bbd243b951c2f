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
