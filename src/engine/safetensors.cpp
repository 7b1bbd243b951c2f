// safetensors reading (validated, memory-mapped) and atomic writing.
#include "engine/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/fs.h"

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace grm::engine {
namespace {

constexpr uint64_t kMaxHeader = 100'000'000;  // the reference implementation's limit

struct DType {
  const char* name;
  torch::ScalarType type;
  uint64_t size;
};

constexpr DType kDTypes[] = {
    {"F64", torch::kFloat64, 8}, {"F32", torch::kFloat32, 4}, {"F16", torch::kFloat16, 2},
    {"BF16", torch::kBFloat16, 2}, {"I64", torch::kInt64, 8}, {"I32", torch::kInt32, 4},
    {"I16", torch::kInt16, 2},   {"I8", torch::kInt8, 1},     {"U8", torch::kUInt8, 1},
    {"BOOL", torch::kBool, 1},
};
// Valid in the format, but libtorch 1.13 has no matching scalar type.
constexpr const char* kUnsupported[] = {"F8_E4M3", "F8_E5M2", "U16", "U32", "U64"};

const DType* find_dtype(const std::string& name) {
  for (const auto& d : kDTypes)
    if (name == d.name) return &d;
  return nullptr;
}

const DType* find_dtype(torch::ScalarType t) {
  for (const auto& d : kDTypes)
    if (t == d.type) return &d;
  return nullptr;
}

[[noreturn]] void fail(const std::string& path, const std::string& msg) { throw Error(path + ": " + msg); }

uint64_t checked_mul(uint64_t a, uint64_t b, const std::string& path, const std::string& what) {
  if (a != 0 && b > std::numeric_limits<uint64_t>::max() / a) fail(path, what + ": size overflows");
  return a * b;
}

TensorInfo parse_entry(const std::string& path, const std::string& name, const nlohmann::json& e,
                       uint64_t data_size) {
  const std::string where = "tensor '" + name + "'";
  if (!e.is_object()) fail(path, where + ": entry is not a JSON object");
  TensorInfo info;
  auto dt = e.find("dtype");
  if (dt == e.end() || !dt->is_string()) fail(path, where + ": missing or non-string \"dtype\"");
  info.dtype = dt->get<std::string>();
  const DType* d = find_dtype(info.dtype);
  if (!d) {
    for (const char* u : kUnsupported)
      if (info.dtype == u) fail(path, where + ": dtype " + info.dtype + " is not supported by this libtorch");
    fail(path, where + ": unknown dtype '" + info.dtype + "'");
  }
  auto sh = e.find("shape");
  if (sh == e.end() || !sh->is_array()) fail(path, where + ": missing or non-array \"shape\"");
  uint64_t numel = 1;
  for (const auto& v : *sh) {
    if (!v.is_number_unsigned())  // nlohmann stores non-negative integers as unsigned
      fail(path, where + ": shape entries must be non-negative integers, got " + v.dump());
    uint64_t dim = v.get<uint64_t>();
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) fail(path, where + ": dimension too large");
    info.shape.push_back(static_cast<int64_t>(dim));
    numel = checked_mul(numel, dim, path, where);
  }
  const uint64_t nbytes = checked_mul(numel, d->size, path, where);
  auto off = e.find("data_offsets");
  if (off == e.end() || !off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() ||
      !(*off)[1].is_number_unsigned())
    fail(path, where + ": \"data_offsets\" must be [begin, end] with non-negative integers");
  info.begin = (*off)[0].get<uint64_t>();
  info.end = (*off)[1].get<uint64_t>();
  if (info.begin > info.end) fail(path, where + ": data_offsets begin > end");
  if (info.end > data_size)
    fail(path, where + ": data_offsets [" + std::to_string(info.begin) + ", " + std::to_string(info.end) +
                   "] out of range (data section is " + std::to_string(data_size) + " bytes)");
  if (info.end - info.begin != nbytes)
    fail(path, where + ": data_offsets span " + std::to_string(info.end - info.begin) + " bytes but " + info.dtype +
                   " shape needs " + std::to_string(nbytes));
  return info;
}

// RAII file descriptor.
struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  Fd f;
  f.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (f.fd < 0) fail(path, std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(f.fd, &st) != 0) fail(path, std::string("cannot stat: ") + std::strerror(errno));
  if (!S_ISREG(st.st_mode)) fail(path, "not a regular file");
  const uint64_t file_size = static_cast<uint64_t>(st.st_size);
  if (file_size < 8) fail(path, "truncated: file is " + std::to_string(file_size) + " bytes, need at least 8");

  void* m = ::mmap(nullptr, file_size, PROT_READ, MAP_PRIVATE, f.fd, 0);
  if (m == MAP_FAILED) fail(path, std::string("cannot mmap: ") + std::strerror(errno));
  std::shared_ptr<const char> mapping(static_cast<const char*>(m),
                                      [file_size](const char* p) { ::munmap(const_cast<char*>(p), file_size); });

  uint64_t n = 0;
  std::memcpy(&n, mapping.get(), 8);
  if (n > file_size - 8)
    fail(path, "header length " + std::to_string(n) + " exceeds the file (" + std::to_string(file_size - 8) +
                   " bytes after the length prefix); truncated or not a safetensors file");
  if (n > kMaxHeader) fail(path, "header length " + std::to_string(n) + " exceeds the 100 MB limit");
  if (n < 2) fail(path, "header too short to be a JSON object");

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(mapping.get() + 8, mapping.get() + 8 + n);
  } catch (const nlohmann::json::exception& e) {
    fail(path, std::string("header is not valid JSON: ") + e.what());
  }
  if (!header.is_object()) fail(path, "header is not a JSON object");

  SafetensorsFile out;
  out.path_ = path;
  out.data_offset_ = 8 + n;
  out.data_size_ = file_size - 8 - n;
  for (const auto& [key, value] : header.items()) {
    if (key == "__metadata__") {
      if (!value.is_object()) fail(path, "\"__metadata__\" is not a JSON object");
      for (const auto& [mk, mv] : value.items()) {
        if (!mv.is_string()) fail(path, "\"__metadata__\" value for '" + mk + "' is not a string");
        out.metadata_[mk] = mv.get<std::string>();
      }
      continue;
    }
    out.tensors_[key] = parse_entry(path, key, value, out.data_size_);
  }

  // Overlap check: sort by [begin, end) and compare neighbours (empty tensors overlap nothing).
  std::vector<std::pair<const std::string*, const TensorInfo*>> order;
  for (const auto& [k, v] : out.tensors_)
    if (v.end > v.begin) order.emplace_back(&k, &v);
  std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.second->begin < b.second->begin; });
  for (size_t i = 1; i < order.size(); ++i)
    if (order[i].second->begin < order[i - 1].second->end)
      fail(path, "tensors '" + *order[i - 1].first + "' and '" + *order[i].first + "' overlap");

  out.mapping_ = std::move(mapping);
  return out;
}

torch::Tensor SafetensorsFile::get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) fail(path_, "no tensor named '" + name + "'");
  const TensorInfo& info = it->second;
  const DType* d = find_dtype(info.dtype);
  torch::Tensor t = torch::empty(info.shape, torch::TensorOptions().dtype(d->type));
  if (info.end > info.begin) {
    const char* from = mapping_.get() + data_offset_ + info.begin;
    std::memcpy(t.data_ptr(), from, info.end - info.begin);
    // The copy is what the caller keeps: unmap the file pages it read (whole pages only), so that loading a
    // model does not hold the file resident beside its own tensors. A later read faults them in again.
    const auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
    const uintptr_t lo = (reinterpret_cast<uintptr_t>(from) + page - 1) / page * page;
    const uintptr_t hi = (reinterpret_cast<uintptr_t>(from) + (info.end - info.begin)) / page * page;
    if (hi > lo) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
  }
  return t;
}

void save_safetensors(const std::string& path, const std::vector<std::pair<std::string, torch::Tensor>>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json header = nlohmann::ordered_json::object();
  if (!metadata.empty()) header["__metadata__"] = metadata;
  std::vector<torch::Tensor> data;
  data.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") fail(path, "'__metadata__' cannot be a tensor name");
    if (header.contains(name)) fail(path, "duplicate tensor name '" + name + "'");
    if (!tensor.defined()) fail(path, "tensor '" + name + "' is undefined");
    const DType* d = find_dtype(tensor.scalar_type());
    if (!d) fail(path, "tensor '" + name + "': unsupported dtype " + std::string(c10::toString(tensor.scalar_type())));
    torch::Tensor c = tensor.to(torch::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(c.numel()) * d->size;
    header[name] = {{"dtype", d->name}, {"shape", c.sizes().vec()}, {"data_offsets", {offset, offset + nbytes}}};
    offset += nbytes;
    data.push_back(std::move(c));
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // pad so the data section starts 8-byte aligned
  const uint64_t n = h.size();

  write_atomic(path, [&](std::ostream& out) {
    char len[8];
    std::memcpy(len, &n, 8);
    out.write(len, 8);
    out.write(h.data(), static_cast<std::streamsize>(h.size()));
    for (const auto& c : data)
      out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(c.numel() * c.element_size()));
  });
}

}  // namespace grm::engine
