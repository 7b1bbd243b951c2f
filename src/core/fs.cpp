#include "core/fs.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace grm {

namespace fs = std::filesystem;

std::string temp_path_for(const std::string& path) {
  const fs::path target(path);
  return (target.parent_path() / (target.filename().string() + ".tmp." + std::to_string(::getpid()))).string();
}

void write_atomic(const std::string& path, const std::function<void(std::ostream&)>& writer) {
  const std::string tmp = temp_path_for(path);
  auto discard = [&] {
    std::error_code ignore;
    fs::remove(tmp, ignore);
  };
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw Error(path + ": cannot create temporary file " + tmp + ": " + std::strerror(errno));
    try {
      writer(out);
    } catch (...) {
      out.close();
      discard();
      throw;
    }
    out.flush();
    if (!out) {
      out.close();
      discard();
      throw Error(path + ": write failed (disk full?)");
    }
  }
  // The data must reach the disk before the rename makes it the file (else a crash can leave it empty).
  if (const int fd = ::open(tmp.c_str(), O_RDONLY); fd >= 0) {
    ::fsync(fd);
    ::close(fd);
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) {
    const std::string why = ec.message();
    discard();
    throw Error(path + ": cannot rename temporary file into place: " + why);
  }
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path + ": cannot open for reading");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw Error(path + ": read error");
  return ss.str();
}

void write_file_atomic(const std::string& path, std::string_view content) {
  write_atomic(path, [&](std::ostream& out) { out.write(content.data(), static_cast<std::streamsize>(content.size())); });
}

}  // namespace grm
