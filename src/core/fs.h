// Atomic file writes: the content goes to a temp file next to the target ("<name>.tmp.<pid>"), is flushed to
// disk, and renamed over the target, so readers (and a run killed at any moment) see the old file or the new
// one, never a half-written one. Errors throw grm::Error naming the target; the temp file is removed.
#pragma once
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

namespace grm {

// The temp file a write to `path` by this process uses.
std::string temp_path_for(const std::string& path);

// `writer` fills the stream; it may throw (the target is then left as it was).
void write_atomic(const std::string& path, const std::function<void(std::ostream&)>& writer);

void write_file_atomic(const std::string& path, std::string_view content);

// The whole file as bytes. Throws grm::Error naming the file when it cannot be opened or read.
std::string read_file(const std::string& path);

}  // namespace grm
