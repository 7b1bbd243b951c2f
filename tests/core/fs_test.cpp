#include "core/fs.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "core/error.h"

namespace fs = std::filesystem;

namespace {

std::string slurp(const std::string& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::string fresh_dir(const std::string& name) {
  const auto d = fs::temp_directory_path() / ("grm-fs-test-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d.string();
}

}  // namespace

TEST(AtomicWrite, ReplacesTheFileAndLeavesNoTempFile) {
  const std::string dir = fresh_dir("replace"), p = dir + "/out.txt";
  grm::write_file_atomic(p, "first");
  EXPECT_EQ(slurp(p), "first");
  grm::write_file_atomic(p, std::string("sec\0ond", 7));
  EXPECT_EQ(slurp(p), std::string("sec\0ond", 7));
  EXPECT_FALSE(fs::exists(grm::temp_path_for(p)));
  EXPECT_EQ(std::distance(fs::directory_iterator(dir), fs::directory_iterator()), 1);
  fs::remove_all(dir);
}

TEST(AtomicWrite, AFailingWriterKeepsTheOldFile) {
  const std::string dir = fresh_dir("fail"), p = dir + "/out.txt";
  grm::write_file_atomic(p, "old");
  EXPECT_THROW(grm::write_atomic(p,
                                 [](std::ostream& out) {
                                   out << "half of the new content";
                                   throw std::runtime_error("writer failed");
                                 }),
               std::runtime_error);
  EXPECT_EQ(slurp(p), "old");
  EXPECT_FALSE(fs::exists(grm::temp_path_for(p)));
  fs::remove_all(dir);
}

TEST(AtomicWrite, AnUnwritableTargetNamesThePath) {
  const std::string p = "/nonexistent-grm-dir/sub/out.txt";
  try {
    grm::write_file_atomic(p, "x");
    FAIL() << "expected an error";
  } catch (const grm::Error& e) {
    EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what();
  }
}

TEST(AtomicWrite, TempFileSitsNextToTheTarget) {
  const std::string t = grm::temp_path_for("/a/b/model.safetensors");
  EXPECT_EQ(t.rfind("/a/b/model.safetensors.tmp.", 0), 0u) << t;
}
