// One project error type for I/O and user-input problems. The CLI catches it once and exits 2.
#pragma once
#include <stdexcept>
#include <string>

namespace grm {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace grm
