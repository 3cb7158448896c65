#include "io/fs.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <system_error>

#include "core/check.h"

namespace cuvae {

namespace {

// Closes a descriptor on scope exit unless released.
struct FdGuard {
  int fd = -1;
  ~FdGuard() {
    if (fd >= 0) ::close(fd);
  }
};

}  // namespace

void write_file_atomic(const std::string& path, const std::string& bytes) {
  write_file_atomic(path, std::vector<ByteSpan>{{bytes.data(), bytes.size()}});
}

void write_file_atomic(const std::string& path, const std::vector<ByteSpan>& pieces) {
  CUVAE_CHECK(!path.empty(), "write_file_atomic: empty path");
  const std::string tmp = path + ".tmp." + std::to_string(static_cast<long>(::getpid()));
  FdGuard g;
  g.fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (g.fd < 0) CUVAE_FAIL("cannot write " << path << ": " << std::strerror(errno));
  auto fail = [&](const char* what) {
    const int err = errno;
    if (g.fd >= 0) ::close(g.fd);
    g.fd = -1;
    ::unlink(tmp.c_str());
    CUVAE_FAIL("cannot write " << path << ": " << what << ": " << std::strerror(err));
  };
  for (const ByteSpan& piece : pieces) {
    const char* p = static_cast<const char*>(piece.data);
    size_t left = piece.size;
    while (left > 0) {
      const ssize_t w = ::write(g.fd, p, left);
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("write");
      }
      p += w;
      left -= static_cast<size_t>(w);
    }
  }
  if (::fsync(g.fd) != 0) fail("fsync");
  const int fd = g.fd;
  g.fd = -1;
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    CUVAE_FAIL("cannot write " << path << ": close: " << std::strerror(err));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    CUVAE_FAIL("cannot write " << path << ": rename: " << std::strerror(err));
  }
}

std::string read_file(const std::string& path) {
  FdGuard g;
  g.fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (g.fd < 0) CUVAE_FAIL("cannot open " << path << ": " << std::strerror(errno));
  struct stat st {};
  if (::fstat(g.fd, &st) == 0 && S_ISDIR(st.st_mode))
    CUVAE_FAIL("cannot open " << path << ": " << std::strerror(EISDIR));
  std::string out;
  if (st.st_size > 0) out.reserve(static_cast<size_t>(st.st_size));
  char buf[1 << 16];
  for (;;) {
    const ssize_t r = ::read(g.fd, buf, sizeof buf);
    if (r < 0) {
      if (errno == EINTR) continue;
      CUVAE_FAIL("cannot read " << path << ": " << std::strerror(errno));
    }
    if (r == 0) break;
    out.append(buf, static_cast<size_t>(r));
  }
  return out;
}

void ensure_dir(const std::string& dir) {
  CUVAE_CHECK(!dir.empty(), "ensure_dir: empty folder name");
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) CUVAE_FAIL("cannot create folder " << dir << ": " << ec.message());
  if (!std::filesystem::is_directory(dir, ec))
    CUVAE_FAIL("cannot create folder " << dir << ": exists and is not a folder");
}

void ensure_writable_dir(const std::string& dir, const char* option_name) {
  try {
    ensure_dir(dir);
  } catch (const Error& e) {
    CUVAE_FAIL(option(option_name) << " " << dir << " cannot be written: " << e.what());
  }
  const std::string probe = dir + "/.write-test." + std::to_string(static_cast<long>(::getpid()));
  const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) CUVAE_FAIL(option(option_name) << " " << dir << " cannot be written: " << std::strerror(errno));
  ::close(fd);
  ::unlink(probe.c_str());
}

int remove_stale_temp_files(const std::string& dir) {
  std::error_code ec;
  int removed = 0;
  for (std::filesystem::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const size_t at = name.rfind(".tmp.");
    if (at == std::string::npos || at + 5 >= name.size()) continue;
    std::string digits = name.substr(at + 5);
    // Plots are written as "<name>.tmp.<pid>.png" (PLplot's driver wants the extension).
    if (digits.size() > 4 && digits.compare(digits.size() - 4, 4, ".png") == 0) digits.resize(digits.size() - 4);
    if (digits.find_first_not_of("0123456789") != std::string::npos || digits.size() > 9) continue;
    const long pid = std::stol(digits);
    if (pid == static_cast<long>(::getpid())) continue;
    if (::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH) continue;  // still running (or not ours)
    std::error_code rm;
    if (std::filesystem::remove(it->path(), rm)) ++removed;
  }
  return removed;
}

bool file_exists(const std::string& path) {
  std::error_code ec;
  return std::filesystem::is_regular_file(path, ec);
}

}  // namespace cuvae
