// Error type and check macros shared by every part of cuvae.
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace cuvae {

/// The one exception type cuvae throws for bad input, failed library calls and
/// violated preconditions. `what()` is a single line that names the problem.
class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& msg) : std::runtime_error(msg) {}
};

namespace detail {
[[noreturn]] inline void throw_check(const char* file, int line, const char* expr,
                                     const std::string& msg) {
  std::ostringstream os;
  os << msg << " [" << expr << " failed at " << file << ":" << line << "]";
  throw Error(os.str());
}
}  // namespace detail

}  // namespace cuvae

/// Throws cuvae::Error with `msg` (a stream expression) plus file:line and the
/// failing condition when `cond` is false. Use for preconditions on sizes/shapes.
#define CUVAE_CHECK(cond, msg)                                             \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::ostringstream cuvae_check_os_;                                  \
      cuvae_check_os_ << msg;                                              \
      ::cuvae::detail::throw_check(__FILE__, __LINE__, #cond,              \
                                   cuvae_check_os_.str());                 \
    }                                                                      \
  } while (0)

/// Throws cuvae::Error with `msg` (a stream expression) and nothing else when `cond` is false:
/// for requirements on user input (flags, files, data) whose message names the flag, file or
/// field and what was expected. Broken internal invariants use CUVAE_CHECK (which adds file:line).
#define CUVAE_REQUIRE(cond, msg)                                           \
  do {                                                                     \
    if (!(cond)) {                                                         \
      std::ostringstream cuvae_require_os_;                                \
      cuvae_require_os_ << msg;                                            \
      throw ::cuvae::Error(cuvae_require_os_.str());                       \
    }                                                                      \
  } while (0)

/// Throws cuvae::Error with `msg` (a stream expression) and nothing else: for
/// user-facing input errors whose message already names the file/flag/field.
#define CUVAE_FAIL(msg)                                                    \
  do {                                                                     \
    std::ostringstream cuvae_fail_os_;                                     \
    cuvae_fail_os_ << msg;                                                 \
    throw ::cuvae::Error(cuvae_fail_os_.str());                            \
  } while (0)
