// Reading and writing safetensors files (https://github.com/huggingface/safetensors format):
// 8-byte little-endian header length N, N bytes of JSON header, then the raw tensor bytes.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include <torch/torch.h>

namespace grm::engine {

struct TensorInfo {
  std::string dtype;  // "F32" | "BF16" | "F16" | "I64" | "I32" | ...
  std::vector<int64_t> shape;
  uint64_t begin = 0;  // offsets relative to the start of the data section
  uint64_t end = 0;
};

// A validated, opened safetensors file. open() checks: file size ≥ 8, header length within the file
// (and ≤ 100 MB, like the reference), header is a JSON object, every entry has a known dtype, a shape of
// non-negative ints, offsets in order within the data section and matching dtype size × element count,
// no overlaps (gaps are tolerated), "__metadata__" maps strings to strings. Every failure throws
// grm::Error whose message starts with the file path. The file is memory-mapped, not read whole.
class SafetensorsFile {
 public:
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::map<std::string, TensorInfo>& tensors() const { return tensors_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  bool contains(const std::string& name) const { return tensors_.count(name) != 0; }
  // A tensor with its on-disk dtype (copied out of the file). Throws grm::Error for unknown names.
  torch::Tensor get(const std::string& name) const;

 private:
  std::string path_;
  std::map<std::string, TensorInfo> tensors_;
  std::map<std::string, std::string> metadata_;
  // The file, mapped read-only (shared by copies of this object); tensor bytes start at data_offset_.
  std::shared_ptr<const char> mapping_;
  uint64_t data_offset_ = 0;
  uint64_t data_size_ = 0;
};

// Writes tensors (contiguous copies are made as needed) in the given order, atomically (temp + rename).
// Supported dtypes: float32, bfloat16, float16, int64, int32, int8, uint8, bool.
void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace grm::engine
