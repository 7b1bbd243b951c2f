#include "engine/safetensors.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "core/error.h"

namespace fs = std::filesystem;
using grm::engine::SafetensorsFile;
using grm::engine::save_safetensors;

namespace {

class SafetensorsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("grm_st_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  std::string file(const std::string& name) const { return (dir_ / name).string(); }

  // Writes a file with the given header text and data bytes, in the on-disk layout.
  std::string write_raw(const std::string& name, const std::string& header, const std::string& data,
                        std::optional<uint64_t> len_override = std::nullopt) {
    std::string p = file(name);
    std::ofstream out(p, std::ios::binary);
    uint64_t n = len_override.value_or(header.size());
    char len[8];
    std::memcpy(len, &n, 8);
    out.write(len, 8);
    out << header << data;
    return p;
  }

  // Expects open() to throw grm::Error whose message starts with the path and contains `needle`.
  void expect_rejected(const std::string& p, const std::string& needle) {
    try {
      SafetensorsFile::open(p);
      FAIL() << "expected grm::Error containing '" << needle << "'";
    } catch (const grm::Error& e) {
      std::string msg = e.what();
      EXPECT_EQ(msg.rfind(p, 0), 0u) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  }

  fs::path dir_;
};

TEST_F(SafetensorsTest, RoundTripsEveryDtype) {
  torch::manual_seed(0);
  std::vector<std::pair<std::string, torch::Tensor>> ts = {
      {"f32", torch::randn({3, 5})},
      {"bf16", torch::randn({4, 2}).to(torch::kBFloat16)},
      {"f16", torch::randn({7}).to(torch::kFloat16)},
      {"f64", torch::randn({2, 2}, torch::kFloat64)},
      {"i64", torch::arange(-5, 7, torch::kInt64).reshape({3, 4})},
      {"i32", torch::arange(0, 10, torch::kInt32)},
      {"i16", torch::arange(-3, 3, torch::kInt16)},
      {"i8", torch::arange(-128, 127, torch::kInt8)},
      {"u8", torch::arange(0, 255, torch::kInt32).to(torch::kUInt8)},
      {"bool", torch::tensor({true, false, true})},
      {"scalar", torch::tensor(3.5f)},
      {"empty", torch::zeros({0, 4})},
      {"strided", torch::arange(0, 12, torch::kFloat32).reshape({3, 4}).t()},
  };
  std::string p = file("m.safetensors");
  save_safetensors(p, ts, {{"format", "pt"}, {"note", "ü"}});
  // Header is padded so the data section is 8-byte aligned.
  std::ifstream in(p, std::ios::binary);
  uint64_t n = 0;
  in.read(reinterpret_cast<char*>(&n), 8);
  EXPECT_EQ(n % 8, 0u);

  auto f = SafetensorsFile::open(p);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_EQ(f.metadata().at("note"), "ü");
  EXPECT_EQ(f.tensors().size(), ts.size());
  EXPECT_EQ(f.tensors().at("bf16").dtype, "BF16");
  for (const auto& [name, t] : ts) {
    ASSERT_TRUE(f.contains(name)) << name;
    torch::Tensor g = f.get(name);
    EXPECT_EQ(g.scalar_type(), t.scalar_type()) << name;
    EXPECT_EQ(g.sizes(), t.sizes()) << name;
    EXPECT_TRUE(torch::equal(g, t)) << name;
  }
  EXPECT_THROW(f.get("missing"), grm::Error);
  // No temp files left behind.
  int entries = 0;
  for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir_)) ++entries;
  EXPECT_EQ(entries, 1);
}

TEST_F(SafetensorsTest, SaveOverwritesAtomicallyAndRejectsDuplicates) {
  std::string p = file("m.safetensors");
  save_safetensors(p, {{"a", torch::ones({2})}});
  save_safetensors(p, {{"b", torch::zeros({3})}});
  auto f = SafetensorsFile::open(p);
  EXPECT_FALSE(f.contains("a"));
  EXPECT_TRUE(f.contains("b"));
  EXPECT_THROW(save_safetensors(p, {{"a", torch::ones({1})}, {"a", torch::ones({1})}}), grm::Error);
  EXPECT_THROW(save_safetensors(p, {{"c", torch::ones({1}, torch::kComplexFloat)}}), grm::Error);
  EXPECT_THROW(save_safetensors(file("nodir/x.safetensors"), {{"a", torch::ones({1})}}), grm::Error);
}

// A file laid out by hand exactly as Python's safetensors writes it (sorted keys, metadata first,
// space-padded header, tensors back to back).
TEST_F(SafetensorsTest, ReadsPythonStyleFile) {
  std::string header =
      R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
      R"("b":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]},"c":{"dtype":"I64","shape":[],"data_offsets":[12,20]}})";
  header.append((8 - header.size() % 8) % 8, ' ');
  std::string data;
  float a[2] = {1.5f, -2.0f};
  data.append(reinterpret_cast<char*>(a), 8);
  data += std::string("\x80\x3f\x00\x40", 4);  // bf16 1.0, 2.0 (little endian)
  int64_t c = -42;
  data.append(reinterpret_cast<char*>(&c), 8);
  std::string p = write_raw("py.safetensors", header, data);
  auto f = SafetensorsFile::open(p);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  EXPECT_TRUE(torch::equal(f.get("a"), torch::tensor({1.5f, -2.0f})));
  torch::Tensor b = f.get("b");
  EXPECT_EQ(b.scalar_type(), torch::kBFloat16);
  EXPECT_TRUE(torch::equal(b.to(torch::kFloat32), torch::tensor({{1.0f, 2.0f}})));
  torch::Tensor ct = f.get("c");
  EXPECT_EQ(ct.dim(), 0);
  EXPECT_EQ(ct.item<int64_t>(), -42);
  EXPECT_EQ(f.tensors().at("b").begin, 8u);
  EXPECT_EQ(f.tensors().at("b").end, 12u);
}

TEST_F(SafetensorsTest, RejectsTruncatedFile) {
  std::string p = file("short.safetensors");
  std::ofstream(p, std::ios::binary) << "abc";
  expect_rejected(p, "truncated");
  // A valid file cut short loses data the header points at.
  std::string q = file("cut.safetensors");
  save_safetensors(q, {{"w", torch::ones({16})}});
  fs::resize_file(q, fs::file_size(q) - 4);
  expect_rejected(q, "tensor 'w'");
}

TEST_F(SafetensorsTest, RejectsHeaderLengthTooBig) {
  expect_rejected(write_raw("big.safetensors", "{}", "", 1000), "header length 1000 exceeds the file");
  expect_rejected(write_raw("huge.safetensors", "{}", "", ~0ull), "exceeds the file");
}

TEST_F(SafetensorsTest, RejectsBadJson) {
  expect_rejected(write_raw("bad.safetensors", R"({"a": {"dtype": )", ""), "not valid JSON");
  expect_rejected(write_raw("arr.safetensors", "[1, 2, 3]", ""), "not a JSON object");
  expect_rejected(write_raw("meta.safetensors", R"({"__metadata__": {"k": 1}})", ""), "__metadata__");
  expect_rejected(write_raw("entry.safetensors", R"({"a": 5})", ""), "tensor 'a'");
  expect_rejected(write_raw("noshape.safetensors", R"({"a": {"dtype":"F32","data_offsets":[0,4]}})", "xxxx"),
                  "shape");
}

TEST_F(SafetensorsTest, RejectsUnknownDtype) {
  expect_rejected(write_raw("dt.safetensors", R"({"w": {"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", "xxxx"),
                  "unknown dtype 'F33'");
  expect_rejected(write_raw("u32.safetensors", R"({"w": {"dtype":"U32","shape":[1],"data_offsets":[0,4]}})", "xxxx"),
                  "not supported");
}

TEST_F(SafetensorsTest, RejectsNegativeShape) {
  expect_rejected(
      write_raw("neg.safetensors", R"({"w": {"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "xxxx"),
      "non-negative");
}

TEST_F(SafetensorsTest, RejectsOffsetsOutOfRange) {
  expect_rejected(write_raw("oor.safetensors", R"({"w": {"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", "xxxx"),
                  "out of range");
  expect_rejected(write_raw("rev.safetensors", R"({"w": {"dtype":"F32","shape":[0],"data_offsets":[4,0]}})", "xxxx"),
                  "begin > end");
}

TEST_F(SafetensorsTest, RejectsSizeMismatch) {
  expect_rejected(
      write_raw("size.safetensors", R"({"w": {"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", "xxxxxxxx"),
      "needs 12");
}

TEST_F(SafetensorsTest, RejectsOverlappingTensors) {
  expect_rejected(write_raw("ov.safetensors",
                            R"({"a": {"dtype":"F32","shape":[2],"data_offsets":[0,8]},)"
                            R"("b": {"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
                            std::string(12, 'x')),
                  "overlap");
}

TEST_F(SafetensorsTest, RejectsMissingFile) { expect_rejected(file("nope.safetensors"), "cannot open"); }

}  // namespace
