// Small file-system helpers: atomic writes, whole-file reads, folder creation.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace cuvae {

/// A run of bytes somewhere in memory (not owned).
struct ByteSpan {
  const void* data = nullptr;
  size_t size = 0;
};

/// Writes `bytes` to `path` so that `path` holds either its old contents or all of the
/// new ones, never a partial file: writes `<path>.tmp.<pid>` in the same folder, flushes
/// it to disk (fsync), closes it and renames it over `path`. On any failure the temporary
/// file is removed and cuvae::Error is thrown naming `path` and the reason (strerror).
void write_file_atomic(const std::string& path, const std::string& bytes);
/// write_file_atomic of the concatenation of `pieces`, written one after another without
/// building it in memory.
void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& pieces);

/// The whole contents of `path` as bytes. Throws cuvae::Error
/// "cannot open <path>: <strerror>" (or "cannot read <path>: ...") on failure.
std::string read_file(const std::string& path);

/// Creates `dir` and any missing parents (like `mkdir -p`); an existing folder is fine.
/// Throws cuvae::Error naming `dir` if it cannot be created or exists as a non-folder.
void ensure_dir(const std::string& dir);

/// ensure_dir(`dir`), then creates and removes a probe file in it, so that a folder that cannot
/// be written fails before any work. Throws cuvae::Error "<option> <dir> cannot be written: <why>",
/// naming the job's option `option_name` (see option() in core/check.h).
void ensure_writable_dir(const std::string& dir, const char* option_name);

/// Removes the temporary files write_file_atomic and the plots leave in `dir` when their process is
/// killed mid-write ("<name>.tmp.<pid>" and "<name>.tmp.<pid>.png" whose process no longer runs);
/// returns how many it removed.
int remove_stale_temp_files(const std::string& dir);

/// True when `path` names an existing regular file (or a link to one). Never throws.
bool file_exists(const std::string& path);

}  // namespace cuvae
